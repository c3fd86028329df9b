"""Figure 3: test MSE against the (initial) compression ratio on the dense, original and sparse
variants, mean ± standard error over folds, with CEL's personalised curve and the full embedding.

Input contract (``summary.csv``, metric ``test_mse``, task/model/dataset fixed):

* ``cel`` at every plotted compression c < 100 on each variant, without personalisation (rows
  whose ``param.personalize_at`` is empty or 0: the Table 7 ``cel`` cr100 cell is personalised
  and is not on this curve);
* the personalised curve, method ``cel_personalized`` (a ``base: cel`` variant with
  ``personalize_at`` > 0 and ``lambda_p``) at the same c: CEL clustered to c, then every item
  untied (Section 4.2.1; the run key's compression is the *initial* ratio). Pass
  ``personalized=None`` to leave it out;
* ``full`` at 100 on each variant (drawn as a horizontal reference line).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cel.figs.common import MissingRuns, cell_table, compression_axis, pyplot, read_summary, save, sorted_compressions

NAME = "fig3"
VARIANTS = ("dense", "original", "sparse")


def _plain_cel(summary: pd.DataFrame, method: str) -> pd.DataFrame:
    col = "param.personalize_at"
    if col not in summary:
        return summary
    p = pd.to_numeric(summary[col], errors="coerce").fillna(0)
    personalised = (summary["method"] == method) & (p > 0)
    return summary[~personalised]


def fig3_points(summary: pd.DataFrame, dataset: str, variants=VARIANTS, model: str = "nmf", task: str = "regression",
                method: str = "cel", personalized: str | None = "cel_personalized", full: str = "full",
                compressions=None, metric: str = "test_mse") -> pd.DataFrame:
    """Rows (variant, curve, method, compression, mean, se, n) of every plotted point."""
    plain = _plain_cel(summary, method)
    base = dict(task=task, dataset=dataset, model=model)
    if compressions is None:
        have = plain[(plain["method"] == method) & (plain["dataset"] == dataset) & (plain["metric"] == metric)]
        # the compressions every variant has (other tables may add CEL runs on one variant only)
        common = set.intersection(*[set(have.loc[have["variant"] == v, "compression"].astype(str)) for v in variants])
        compressions = [c for c in sorted_compressions(have["compression"]) if float(c) < 100 and str(c) in common]
        if not compressions:
            raise MissingRuns(NAME, [f"method={method} below 100% on {dataset}"],
                              "Figure 3 needs CEL at some compression < 100 on each variant")
    cells = []
    for v in variants:
        cells += [{"curve": "CEL", **base, "variant": v, "method": method, "compression": c} for c in compressions]
        cells.append({"curve": "full embedding", **base, "variant": v, "method": full, "compression": "100"})
    pts = cell_table(plain, metric, cells, NAME, "grid: cel at each compression and full at 100 on each variant")
    if personalized:
        pcells = [{"curve": "CEL (personalised)", **base, "variant": v, "method": personalized, "compression": c}
                  for v in variants for c in compressions]
        pts = pd.concat([pts, cell_table(summary, metric, pcells, NAME,
                                         f"grid: {personalized} (base cel, personalize_at > 0) at each compression, "
                                         "or leave the personalised curve out")], ignore_index=True)
    return pts


def fig3(summary_csv: str | Path, out: str | Path, dataset: str, **kw) -> pd.DataFrame:
    summary = read_summary(summary_csv)
    pts = fig3_points(summary, dataset, **kw)
    variants = list(dict.fromkeys(pts["variant"]))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.4), squeeze=False)
    for ax, v in zip(axes[0], variants):
        sub = pts[pts["variant"] == v]
        for curve, style in (("CEL", "o-"), ("CEL (personalised)", "s--")):
            c = sub[sub["curve"] == curve].sort_values("compression", key=lambda s: s.astype(float))
            if len(c):
                x = c["compression"].astype(float)
                ax.plot(x, c["mean"], style, label=curve)
                ax.fill_between(x, c["mean"] - c["se"], c["mean"] + c["se"], alpha=0.25)
        f = sub[sub["curve"] == "full embedding"]
        if len(f):
            m, se = float(f["mean"].iloc[0]), float(f["se"].iloc[0])
            ax.axhline(m, color="k", lw=1, ls=":", label="full embedding")
            ax.axhspan(m - se, m + se, color="k", alpha=0.08)
        compression_axis(ax, sub["compression"][sub["curve"] != "full embedding"])
        ax.set_xlabel("(initial) compression ratio $M_q/M$ (%)")
        ax.set_title(f"{v} {pts['dataset'].iloc[0] if 'dataset' in pts else ''}".strip())
    axes[0][0].set_ylabel("test MSE (mean ± s.e. over folds)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, pts)
    return pts
