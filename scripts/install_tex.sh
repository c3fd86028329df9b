#!/usr/bin/env bash
# A TeX engine for the reproduction report's PDF (`make tex`, then `make report`): Debian's
# pdflatex + latexmk and the LaTeX packages report.tex uses (geometry, booktabs, graphicx, amsmath,
# amssymb, array, longtable, hyperref). Needs root (or sudo) and Debian's package mirror. Without
# it the report is LaTeX source only.
set -euo pipefail
if command -v latexmk >/dev/null && command -v pdflatex >/dev/null; then
  echo "TeX already installed: $(pdflatex --version | head -1)"; exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk >/dev/null
pdflatex --version | head -1
