"""What every paper figure shares: reading summary.csv and run folders, fold statistics, saving.

Statistics (READINGS, "Protocol and statistics"): seeds of one fold are averaged first, then the
mean and the standard error ``std(ddof=1) / sqrt(n)`` are taken over the n folds (se = 0 for n = 1).
Each figure writes ``<stem>.pdf``, ``<stem>.png`` and ``<stem>.csv`` (the plotted points, so the
report and the tests read the very numbers on the figure). A figure whose runs are missing raises
:class:`MissingRuns`, naming every missing cell and the run path pattern that would supply it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cel.errors import ConfigError
from cel.runkey import format_compression


class MissingRuns(ConfigError):
    """A figure's input runs are absent; the message lists the missing cells."""

    def __init__(self, figure: str, missing: list[str], hint: str = ""):
        self.figure, self.missing = figure, list(missing)
        shown = "; ".join(self.missing[:12]) + (f"; ... ({len(self.missing)} in all)" if len(self.missing) > 12 else "")
        super().__init__(f"{figure}: no runs for {shown}" + (f". {hint}" if hint else ""))


def read_summary(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no summary.csv (run `cel summarize` / the aggregate_runs rule first)")
    return pd.read_csv(path, dtype={"compression": str})


def comp_key(c) -> str:
    return format_compression(c)


def fold_stats(values: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """``values`` has columns ``by + [fold, seed, value]``: seeds averaged within a fold, then the
    mean, standard error and n over folds per group."""
    per_fold = values.groupby(by + ["fold"], dropna=False)["value"].mean().reset_index()
    g = per_fold.groupby(by, dropna=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, n="count").reset_index()
    out["se"] = out["std"] / np.sqrt(out["n"])
    return out.drop(columns="std")


def select(summary: pd.DataFrame, metric: str, **coords) -> pd.DataFrame:
    """Rows of one metric at the given coordinates (a list value matches any of its items)."""
    m = summary["metric"] == metric
    for col, want in coords.items():
        if want is None:
            continue
        vals = [str(v) for v in (want if isinstance(want, (list, tuple, set)) else [want])]
        if col == "compression":
            vals = [comp_key(v) for v in vals]
        m &= summary[col].astype(str).isin(vals)
    return summary[m]


def cell_table(summary: pd.DataFrame, metric: str, cells: list[dict], figure: str, hint: str = "") -> pd.DataFrame:
    """Fold statistics of ``metric`` for each requested cell (a dict of coordinates plus ``curve``);
    every cell must have at least one run, else :class:`MissingRuns` lists those without."""
    rows, missing = [], []
    for cell in cells:
        coords = {k: v for k, v in cell.items() if k != "curve"}
        part = select(summary, metric, **coords)
        if part.empty:
            missing.append("/".join(f"{k}={v}" for k, v in coords.items()))
            continue
        st = fold_stats(part.assign(_=0), ["_"]).iloc[0]
        rows.append({**cell, "compression": comp_key(coords.get("compression", "100")),
                     "mean": float(st["mean"]), "se": float(st["se"]), "n": int(st["n"])})
    if missing:
        raise MissingRuns(figure, missing, hint)
    return pd.DataFrame(rows)


def run_folders(results: str | Path, task: str, dataset: str, variant: str, model: str, method: str,
                compression) -> list[Path]:
    """Every finished run folder (with metrics.json) of one cell, over folds and seeds."""
    base = Path(results) / "runs" / task / dataset / variant / model / method / f"cr{comp_key(compression)}"
    return sorted(p.parent for p in base.glob("f*/s*/metrics.json"))


def read_metrics(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stem_of(out: str | Path) -> Path:
    """The figure's path without a .pdf/.png/.csv suffix (other dots, as in cr0.5, stay)."""
    out = Path(out)
    return out.with_suffix("") if out.suffix in {".pdf", ".png", ".csv"} else out


def save(fig, out: str | Path, points: pd.DataFrame | None = None) -> list[Path]:
    """``out`` names the figure by its stem (a suffix is dropped): writes stem.pdf, stem.png and,
    given ``points``, stem.csv. Returns the paths written."""
    plt = pyplot()
    stem = stem_of(out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in (".pdf", ".png"):
        fig.savefig(stem.with_suffix(ext), dpi=150, bbox_inches="tight")
        written.append(stem.with_suffix(ext))
    plt.close(fig)
    if points is not None:
        points.to_csv(stem.with_suffix(".csv"), index=False)
        written.append(stem.with_suffix(".csv"))
    return written


def compression_axis(ax, values) -> None:
    """Log-scaled compression axis ticked at the plotted ratios, labelled as percentages."""
    from matplotlib.ticker import NullFormatter, NullLocator

    vals = sorted({float(v) for v in values})
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(vals)
    ax.set_xticklabels([f"{v:g}%" for v in vals])


def sorted_compressions(values) -> list[str]:
    return sorted({comp_key(v) for v in values}, key=float)
