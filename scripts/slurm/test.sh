#!/usr/bin/env bash
# make test-slurm: install (Debian packages), start the single-node cluster, run
# tests_optin/test_slurm.py, and stop every daemon started here, whatever the outcome.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export CEL_SLURM_DIR=${CEL_SLURM_DIR:-/tmp/cel-slurm}
export CEL_OPTIN_OUT=${CEL_OPTIN_OUT:-results/optin}
bash scripts/slurm/install.sh || exit 1
trap 'bash scripts/slurm/stop.sh' EXIT
bash scripts/slurm/start.sh || exit 1
source "$CEL_SLURM_DIR/env.sh"
$PY -m pytest -q -s -p no:cacheprovider tests_optin/test_slurm.py "$@"
