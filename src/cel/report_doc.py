"""The reproduction report: ``results/report/report.tex`` with every table and figure of one or
more profiles, and an index of which of the paper's rows can be reproduced on this machine.

* Tables: every ``<results>/tables/*.tex`` as written by ``cel table`` (each cell already
  carries the paper's number and the delta beside ours), ``\\input`` by relative path.
* Figures: every ``<results>/figures/*.pdf`` with its caption (``CAPTIONS``, by name), the CSV of
  its plotted points named under it; for Figure 5 the genre-entropy numbers and for Proposition 1
  the argmin are quoted from those CSVs.
* Index (``INDEX``): per paper table/figure, the paper's datasets, what runs here (ML-100k and
  synthetic data) and what needs a connected machine (ML-1m, ML-10m, Amazon; Table 4's data is
  private), and whether each profile has built it.

The LaTeX source is always written. A PDF is compiled only when ``latexmk`` or ``pdflatex`` is on
PATH (nothing is installed); ``build_report`` returns what happened.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage[a4paper,landscape,margin=1.5cm]{geometry}
\usepackage{booktabs,graphicx,amsmath,amssymb,array,longtable}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{4pt}
"""


@dataclass(frozen=True)
class Entry:
    item: str        # the paper's table or figure
    target: str      # our target name (a table or a figure stem)
    paper: str       # the paper's data
    here: str        # what this machine reproduces
    connected: str   # what needs a connected machine ("" = nothing)


INDEX = [
    Entry("Table 2", "table2", "ML-1m; NMF and DIN; LTC/LMC/SIT", "ML-100k analogue (NMF, DIN); LTC/LMC/SIT columns",
          "ML-1m rows"),
    Entry("Table 3", "table3", "Amazon Video Games, Electronics; DeepFM, DIN (AUC)", "--",
          "all rows (Amazon 2014 archives)"),
    Entry("Table 4", "table4", "One-day Sales (private)", "--", "not public: not reproducible anywhere"),
    Entry("Table 5", "table5", "ML-1m; rule-based clusterings", "ML-100k analogue", "ML-1m rows"),
    Entry("Table 6", "table6", "ML-100k, ML-1m; split methods", "ML-100k column", "ML-1m column"),
    Entry("Table 7", "table7", "ML-100k, ML-1m, ML-10m; NMF", "ML-100k columns", "ML-1m and ML-10m columns"),
    Entry("Table 8", "table8", "ML-1m; split vs no split", "ML-100k analogue", "ML-1m rows"),
    Entry("Table 9", "table9", "ML-100k, ML-1m; GPCA threshold", "ML-100k column", "ML-1m column"),
    Entry("Table 10", "table10", "ML-1m; reassignment interval t1", "ML-100k analogue", "ML-1m rows"),
    Entry("Table 11", "table11", "ML-100k, ML-1m; retrain on frozen clusters", "ML-100k column", "ML-1m column"),
    Entry("Table 12", "table12", "ML-100k, ML-1m; training density", "ML-100k column", "ML-1m column"),
    Entry("Table 13", "table13", "ML-100k; optimiser x gradient averaging", "all rows", ""),
    Entry("Table 14", "table14", "ML-100k; user optimiser and lr", "all rows", ""),
    Entry("Section 4.2.2", "personalize", "ML-1m, 1%; warm-only personalisation (text, no table)",
          "ML-100k analogue", "ML-1m cell"),
    Entry("Figure 3", "fig3", "ML-1m dense/original/sparse", "ML-100k analogue", "ML-1m panels"),
    Entry("Figure 4", "fig4", "ML-1m, by item interaction count", "ML-100k analogue", "ML-1m curves"),
    Entry("Figure 5", "fig5", "ML-1m, M_q = 10; genre entropy", "ML-100k analogue", "ML-1m clusters"),
    Entry("Figure 6", "fig6", "ML-100k NMF/DIN, ML-1m NMF; split criteria", "ML-100k NMF panel", "ML-1m panel"),
    Entry("Figure 7b", "fig7b", "ML-1m; rows of B_q outside C", "ML-100k analogue", "ML-1m curves"),
    Entry("Proposition 1", "prop1", "theory (no experiment in the paper)", "planted synthetic data", ""),
]

CAPTIONS = {
    "fig3": "Figure 3 analogue: test MSE against the (initial) compression ratio on the dense, original and sparse "
            "variants; mean $\\pm$ standard error over folds (seeds averaged within a fold). The personalised curve "
            "is CEL clustered to that ratio, then untied (Section 4.2.1); the dotted line is the full embedding.",
    "fig4": "Figure 4 analogue: test MSE of items grouped by their number of training interactions: CEL, PreHash "
            "($K=M_q$) at the same ratio, the full embedding and personalised CEL; mean $\\pm$ s.e. over folds.",
    "fig5": "Figure 5 analogue: CEL's item clusters ordered by mean training rating ($\\pm$ std), with the five "
            "most-rated titles of each; right: genre entropy $-\\sum p\\log p$ of CEL's clustering against random "
            "clusterings of the same sizes (mean $\\pm$ sd), per genre over clusters (A.1's formula) and per cluster "
            "over genres (the text's reading).",
    "fig6": "Figure 6 analogue: test MSE of the five criteria that choose the cluster to split, against the compression "
            "ratio, and each criterion's average rank over the ratios (1 = best).",
    "fig7b": "Figure 7(b) analogue: share of cluster embeddings (rows of $B_q$) outside the central region "
             "$C=\\{x: x^\\top\\mathbf{1}\\ge\\sqrt{R-1}\\,\\|x\\|_2\\}$ during training.",
    "prop1": "Proposition 1 on planted NMF data: validation (and test) MSE of CEL against the number of item clusters "
             "$M_q$; the dotted line is the planted number of clusters.",
    "progressive_mse": "CEL-Lite: progressive (predict-then-train) MSE against interactions seen on one pass.",
}


def tex_escape(text: str) -> str:
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        out = out.replace(a, b)
    return out


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def caption_for(stem: str) -> str:
    for key in sorted(CAPTIONS, key=len, reverse=True):
        if stem.startswith(key):
            return CAPTIONS[key]
    return tex_escape(stem)


def figure_notes(pdf: Path) -> str:
    """Numbers quoted under a figure from its CSV files (Figure 5's entropies, Proposition 1's argmin)."""
    import pandas as pd

    stem = pdf.with_suffix("")
    notes = []
    ent = Path(f"{stem}_entropy.csv")
    if ent.exists():
        for r in pd.read_csv(ent).itertuples():
            notes.append(f"genre entropy {tex_escape(r.reading)}: CEL {r.cel:.4f}, random {r.random_mean:.4f} "
                         f"$\\pm$ {r.random_sd:.4f} (share of {r.n_random} random clusterings at or below CEL: "
                         f"{r.p_random_lower:.3f})")
    pts = stem.with_suffix(".csv")
    if pts.exists() and pdf.name.startswith("prop1"):
        p = pd.read_csv(pts)
        for m, sub in p.groupby("metric"):
            notes.append(f"{tex_escape(m)}: minimum at $M_q$ = {int(sub['argmin'].iloc[0])}"
                         + (f", smallest $M_q$ within one s.e. of it {int(sub['k_1se'].iloc[0])}" if "k_1se" in sub else "")
                         + f" (planted {int(sub['planted'].iloc[0])})")
    if pts.exists() and pdf.name.startswith("fig7b"):
        t = pd.read_csv(pts, dtype={"compression": str})
        for c, sub in t.groupby("compression", sort=False):
            last = sub.iloc[-1]
            notes.append(f"{c}\\%: {100 * last['share_outside']:.0f}\\% of {int(last['clusters'])} rows outside $C$ "
                         f"at step {int(last['step'])}")
    return "; ".join(notes)


def built_cell(res: Path, target: str) -> str:
    """$\\checkmark$ for a built table or unsuffixed figure; a figure built per dataset
    (``<target>_<dataset>.pdf``) lists its datasets; "--" when nothing is built."""
    if target.startswith("table"):
        return r"$\checkmark$" if (res / "tables" / f"{target}.tex").exists() else "--"
    figs = res / "figures"
    if (figs / f"{target}.pdf").exists():
        return r"$\checkmark$"
    per = sorted(p.stem[len(target) + 1:] for p in figs.glob(f"{target}_*.pdf")) if figs.is_dir() else []
    return tex_escape(", ".join(per)) if per else "--"


def index_table(profiles: dict[str, Path]) -> list[str]:
    cols = "p{2.2cm}p{5.5cm}p{5cm}p{5cm}" + "c" * len(profiles)
    head = ["paper", "paper's data", "reproduced here", "needs a connected machine"] + [
        f"built: {tex_escape(n)}" for n in profiles]
    lines = [r"\begin{longtable}{" + cols + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule", r"\endhead"]
    for e in INDEX:
        built = [built_cell(Path(res), e.target) for res in profiles.values()]
        lines.append(" & ".join([e.item, tex_escape(e.paper), tex_escape(e.here), tex_escape(e.connected or "--")]
                                + built) + r" \\")
    lines += [r"\bottomrule", r"\end{longtable}"]
    return lines


def report_tex(profiles: dict[str, Path], out_dir: Path) -> str:
    """The document's text; ``profiles`` maps a name to its results folder."""
    body = [PREAMBLE, r"\begin{document}",
            r"\section*{Clustered Embedding Learning: reproduction report}",
            "Every table cell reads ``ours (mean $\\pm$ std over folds, n)'' with the paper's number and "
            "ours $-$ paper below it; every figure has the CSV of its plotted points beside it. "
            "Generated by \\texttt{cel report} -- do not edit by hand.",
            r"\subsection*{What is reproducible here}",
            "This machine reaches ML-100k (and generates synthetic data); ML-1m, ML-10m and the Amazon archives need "
            "a connected machine (same workflow, \\texttt{DATASETS=} empty). Rows marked ``analogue'' rerun an "
            "ML-1m experiment on ML-100k: their cells compare with the paper's ML-1m number only where the table says "
            "so, never across datasets."]
    body += index_table(profiles)
    for name, res in profiles.items():
        res = Path(res)
        tables = sorted((res / "tables").glob("*.tex")) if (res / "tables").is_dir() else []
        figures = sorted((res / "figures").glob("*.pdf")) if (res / "figures").is_dir() else []
        body.append(f"\\clearpage\\section*{{Profile {tex_escape(name)} (\\texttt{{{tex_escape(res.as_posix())}}})}}")
        if not tables and not figures:
            body.append("Nothing built yet for this profile.")
        for t in tables:
            body += [f"\\subsection*{{{tex_escape(t.stem)}}}", f"\\input{{{_rel(t, out_dir)}}}", r"\clearpage"]
        for f in figures:
            notes = figure_notes(f)
            csv = f.with_suffix(".csv")
            body += [r"\begin{figure}[p]", r"\centering",
                     f"\\includegraphics[width=\\linewidth,height=0.75\\textheight,keepaspectratio]{{{_rel(f, out_dir)}}}",
                     f"\\caption{{{caption_for(f.stem)}" + (f" {notes}." if notes else "")
                     + (f" Points: \\texttt{{{tex_escape(csv.name)}}}." if csv.exists() else "") + "}",
                     r"\end{figure}"]
    body.append(r"\end{document}")
    return "\n".join(body) + "\n"


def tex_engine() -> list[str] | None:
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error"]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    return None


def build_report(profiles: dict[str, str | Path], out_tex: str | Path, compile_pdf: bool = True) -> dict:
    """Write the LaTeX source; compile it when a TeX engine is present. Returns {tex, pdf, engine, note}."""
    out_tex = Path(out_tex)
    out_tex.parent.mkdir(parents=True, exist_ok=True)
    out_tex.write_text(report_tex({k: Path(v) for k, v in profiles.items()}, out_tex.parent))
    result = {"tex": str(out_tex), "pdf": None, "engine": None, "note": ""}
    engine = tex_engine() if compile_pdf else None
    if engine is None:
        result["note"] = "no TeX engine (latexmk/pdflatex) on PATH: LaTeX source only" if compile_pdf else "not compiled"
        return result
    result["engine"] = engine[0]
    runs = 1 if engine[0] == "latexmk" else 2          # pdflatex twice: longtable widths settle
    for _ in range(runs):
        proc = subprocess.run(engine + [out_tex.name], cwd=out_tex.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{engine[0]} failed on {out_tex} (see {out_tex.with_suffix('.log')}):\n"
                               + proc.stdout[-2000:])
    result["pdf"] = str(out_tex.with_suffix(".pdf"))
    return result


def table_html(csv: str | Path) -> str:
    """A table's cells CSV (``cel table``'s ``<table>.csv``) as an HTML page for Snakemake's
    ``--report``: every column, numbers to 4 decimals (the paper's value and the delta included)."""
    import pandas as pd

    cells = pd.read_csv(csv, dtype={"compression": str})
    html = cells.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="--", border=0)
    title = Path(csv).stem
    return (f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h3>{title}: ours (mean, std over folds, n) beside the paper</h3>{html}</body></html>\n")


# ------------------------------------------------------------------------------ CLI
def add_args(sp) -> None:
    sp.add_argument("--table-html", metavar="CSV", help="only render a table's cells CSV as HTML into --out")
    sp.add_argument("--out", default=None, help="report .tex (default RESULTS/report/report.tex)")
    sp.add_argument("--results", action="append",
                    help="NAME=RESULTS_DIR of a profile to include (repeat; default: this profile's results_dir)")
    sp.add_argument("--no-pdf", action="store_true", help="write the LaTeX source only")


def run(cfg, args) -> int:
    from cel.errors import ConfigError

    if args.table_html:
        if not args.out:
            raise ConfigError("--table-html needs --out")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table_html(args.table_html))
        print(f"wrote {args.out}")
        return 0
    profiles = {}
    for item in args.results or []:
        name, sep, path = item.partition("=")
        if not sep:
            raise ConfigError(f"--results: expected NAME=RESULTS_DIR, got {item!r}")
        profiles[name] = Path(path)
    if not profiles:
        res = Path(cfg.results_dir)
        profiles[res.name or "results"] = res
    out = Path(args.out) if args.out else Path(cfg.results_dir) / "report" / "report.tex"
    r = build_report(profiles, out, compile_pdf=not args.no_pdf)
    print(f"wrote {r['tex']}" + (f" and {r['pdf']} ({r['engine']})" if r["pdf"] else f" ({r['note']})"))
    return 0
