"""Figures from run folders (``curves.parquet``), never from anything else.

``progressive``: the predict-then-train score of stream runs against the number of interactions
seen (issue #11: CEL-Lite's progressive MSE on the ML-100k stream beside the full embedding's).
Each curve is the cumulative score the trainer logs (every step for MSE, every 10 steps for AUC, and at the end of a stream)
(``progressive_<metric>`` against ``n``); the plotted points are returned for checking.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def progressive_points(run_dir: str | Path, metric: str = "mse") -> pd.DataFrame:
    """(n, value) rows of a run's cumulative progressive score, in stream order."""
    path = Path(run_dir) / "curves.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no curves (is {run_dir} a finished run folder?)")
    curves = pd.read_parquet(path)
    col = f"progressive_{metric}"
    if col not in curves or "n" not in curves:
        raise ValueError(f"{path}: no {col} column: the run did not train on a stream feed")
    pts = curves.dropna(subset=[col])[["n", col]].rename(columns={col: "value"})
    return pts.astype({"n": int}).reset_index(drop=True)


def progressive_figure(runs: dict[str, str | Path], out: str | Path, metric: str = "mse",
                       title: str = "") -> dict[str, pd.DataFrame]:
    """Plot each labelled run's progressive score against interactions seen into ``out`` (PNG/PDF)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {label: progressive_points(d, metric) for label, d in runs.items()}
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, pts in points.items():
        ax.plot(pts["n"], pts["value"], label=label)
    ax.set_xlabel("interactions seen")
    ax.set_ylabel(f"progressive {metric.upper()} (predict, then train)")
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return points
