"""Figure 6: the five criteria that choose the cluster to split (A.3.2), test MSE against the
compression ratio, and each criterion's average rank over the settings (the paper's panel d).

Input contract (``summary.csv``, metric ``test_mse``): for every plotted compression, runs of

====================  ==========================================  =========================
method                criterion                                   paper's name
====================  ==========================================  =========================
cel                   interactions (CEL's default)                number of interactions
cel_criterion_loss    total_loss                                  total loss L_k
cel_criterion_mean_loss  mean_loss                                averaged loss L_k / |k|
cel_criterion_entities   entities                                 number of items
cel_criterion_grad_norm  grad_norm                                trace(G_kᵀ G_k)
====================  ==========================================  =========================

Rows of ``cel`` whose ``param.personalize_at`` is set (the personalised Table 7 cell) are left out.
Ranks: per compression, criteria ranked by their fold-mean test MSE (1 = best, ties averaged),
then averaged over compressions.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cel.figs.common import MissingRuns, cell_table, compression_axis, pyplot, read_summary, save, sorted_compressions
from cel.figs.fig3 import _plain_cel

NAME = "fig6"
CRITERIA = {"cel": "interactions (default)", "cel_criterion_loss": "total loss",
            "cel_criterion_mean_loss": "mean loss", "cel_criterion_entities": "items (entities)",
            "cel_criterion_grad_norm": "gradient norm"}


def fig6_points(summary: pd.DataFrame, dataset: str, compressions=None, variant: str = "original", model: str = "nmf",
                task: str = "regression", criteria: dict[str, str] = CRITERIA,
                metric: str = "test_mse") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, ranks): rows (curve, method, compression, mean, se, n, rank) and (curve, method, mean_rank)."""
    plain = _plain_cel(summary, "cel")
    if compressions is None:
        have = plain[plain["method"].isin(list(criteria)[1:]) & (plain["dataset"] == dataset)]
        compressions = sorted_compressions(have["compression"])
        if not compressions:
            raise MissingRuns(NAME, [f"method={m}" for m in list(criteria)[1:]],
                              f"Figure 6 needs the criterion variants of cel on {dataset}")
    cells = [{"curve": label, "task": task, "dataset": dataset, "variant": variant, "model": model, "method": m,
              "compression": c} for m, label in criteria.items() for c in compressions]
    pts = cell_table(plain, metric, cells, NAME, "grid: cel and its four cel_criterion_* variants at each compression")
    pts["rank"] = pts.groupby("compression")["mean"].rank(method="average")
    ranks = pts.groupby(["curve", "method"], sort=False)["rank"].mean().rename("mean_rank").reset_index()
    return pts, ranks


def fig6(summary_csv: str | Path, out: str | Path, dataset: str, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    pts, ranks = fig6_points(read_summary(summary_csv), dataset, **kw)
    plt = pyplot()
    fig, (ax, rx) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [2, 1]})
    for curve, sub in pts.groupby("curve", sort=False):
        sub = sub.sort_values("compression", key=lambda s: s.astype(float))
        ax.errorbar(sub["compression"].astype(float), sub["mean"], yerr=sub["se"], fmt="o-", capsize=2, ms=4,
                    label=curve)
    compression_axis(ax, pts["compression"])
    ax.set_xlabel("compression ratio $M_q/M$ (%)")
    ax.set_ylabel("test MSE (mean ± s.e. over folds)")
    ax.set_title(f"split criterion, {dataset}", fontsize=9)
    ax.legend(fontsize=7)
    rx.barh(ranks["curve"], ranks["mean_rank"], color="C2")
    rx.invert_yaxis()
    rx.set_xlabel("average rank (1 = best)")
    rx.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    save(fig, out, pts)
    return pts, ranks
