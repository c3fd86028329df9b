"""Figure 4: test MSE of items grouped by their number of training interactions.

Input contract: run folders ``<results>/runs/<task>/<dataset>/<variant>/<model>/<method>/cr<c>/f*/s*/``
whose ``metrics.json`` carries ``test_mse_by_item_interactions`` (bucket ``"lo-hi"`` -> MSE of the
test rows whose item has lo <= training count < hi; written by every regression run). Curves:

* ``CEL``: ``cel`` at compression ``compression``;
* ``PreHash (K=M_q)``: ``prehash_kmq`` at the same compression;
* ``full embedding``: ``full`` at 100;
* ``CEL (personalised)``: by default ``cel`` at 100 — Table 7's personalised CEL cell (clustered
  to a budget chosen on validation, then untied); pass ``personalized=None`` to leave it out.

Per bucket: seeds averaged within a fold, mean ± s.e. over folds (a bucket a fold lacks is skipped
for that fold; the plotted n says how many folds had it).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cel.figs.common import MissingRuns, comp_key, fold_stats, pyplot, read_metrics, run_folders, save

NAME = "fig4"
FIELD = "test_mse_by_item_interactions"


def bucket_rows(run_dir: Path) -> list[dict]:
    rec = read_metrics(run_dir)
    if FIELD not in rec or not rec[FIELD]:
        raise ValueError(f"{run_dir}/metrics.json: no '{FIELD}' (not a regression run, or written before Figure 4 "
                         "buckets existed: rerun it)")
    run = rec["run"]
    return [{"fold": int(run["fold"]), "seed": int(run.get("seed", 0)), "bucket": b, "lo": int(b.split("-")[0]),
             "value": float(v)} for b, v in rec[FIELD].items()]


def fig4_points(results: str | Path, dataset: str, compression="1", variant: str = "original", model: str = "nmf",
                task: str = "regression", method: str = "cel", baseline: str = "prehash_kmq", full: str = "full",
                personalized: tuple[str, str] | None = ("cel", "100")) -> pd.DataFrame:
    """Rows (curve, method, compression, bucket, lo, mean, se, n) of every plotted point."""
    curves = [("CEL", method, compression), ("PreHash (K=M_q)", baseline, compression), ("full embedding", full, "100")]
    if personalized:
        curves.append(("CEL (personalised)", personalized[0], personalized[1]))
    frames, missing = [], []
    for label, m, c in curves:
        dirs = run_folders(results, task, dataset, variant, model, m, c)
        if not dirs:
            missing.append(f"{task}/{dataset}/{variant}/{model}/{m}/cr{comp_key(c)}/f*/s*/metrics.json")
            continue
        rows = pd.DataFrame([r for d in dirs for r in bucket_rows(d)])
        st = fold_stats(rows, ["bucket", "lo"]).sort_values("lo")
        frames.append(st.assign(curve=label, method=m, compression=comp_key(c)))
    if missing:
        raise MissingRuns(NAME, missing, f"under {results}/runs")
    cols = ["curve", "method", "compression", "bucket", "lo", "mean", "se", "n"]
    return pd.concat(frames, ignore_index=True)[cols]


def fig4(results: str | Path, out: str | Path, dataset: str, compression="1", **kw) -> pd.DataFrame:
    pts = fig4_points(results, dataset, compression, **kw)
    order = pts.drop_duplicates("bucket").sort_values("lo")["bucket"].tolist()
    pos = {b: i for i, b in enumerate(order)}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    styles = {"CEL": "o-", "PreHash (K=M_q)": "^-", "full embedding": "k:", "CEL (personalised)": "s--"}
    for curve, sub in pts.groupby("curve", sort=False):
        x = sub["bucket"].map(pos)
        ax.errorbar(x, sub["mean"], yerr=sub["se"], fmt=styles.get(curve, "o-"), capsize=2, ms=4,
                    label=f"{curve} ({sub['compression'].iloc[0]}%)")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([b.replace("-inf", "+") for b in order], rotation=45, ha="right")
    ax.set_xlabel("item's number of training interactions [lo, hi)")
    ax.set_ylabel("test MSE (mean ± s.e. over folds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, pts)
    return pts
