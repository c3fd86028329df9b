"""Proposition 1 on planted data: CEL's validation MSE against the number of clusters M_q, on
synthetic data drawn from the NMF model of Theorem 1 with a known number K of item clusters.
Proposition 1 says a unique optimal cluster number exists; on planted data it is K, so the curve
should fall until M_q = K and stop improving after it (further splits only duplicate rows of B_q).

A small experiment of its own: a profile built in memory (one ``synthetic`` dataset with
``clusters: K``, the NMF model at the planted rank, method ``cel``), one run per M_q in ``ks``
(compression 100·M_q/M, so that CEL's cap is exactly M_q clusters) per fold and seed, each a
normal ``cel train`` run written under ``<work>/runs/`` (a rerun reuses a finished run whose
config hash still matches and retrains one whose settings changed). Validation
MSE is the held-out slice of the training fold at the selected step (what selection sees);
test MSE is shown beside it. Points: seeds averaged within a fold, mean ± s.e. over folds. Both
the argmin and the one-standard-error choice (``k_1se``) are reported.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cel.figs.common import fold_stats, pyplot, read_metrics, save

NAME = "prop1"
DATASET = "planted"
# 600 users x 120 items in 6 planted clusters, 20% observed (~14k ratings, noise sd 0.1): enough
# data per cluster for the split threshold d (a cluster splits only above 2d training ratings) to
# let CEL reach M_q up to ~15; trained to convergence (lr 1e-3, up to 6000 steps, patience 1000).
PLANTED = {"users": 600, "items": 120, "clusters": 6, "rank": 4, "density": 0.2, "noise": 0.1,
           "popularity": 0.5, "seed": 0}
KS = (2, 4, 5, 6, 8, 12, 16)
TRAIN = {"optimizer": "gd", "lr": 0.001, "steps": 6000, "eval_every": 25, "log_every": 1000, "seed": 0,
         "val_fraction": 0.1, "patience": 40, "refit": False}


def prop1_config(work: str | Path, planted: dict | None = None, ks=KS, folds=(0, 1, 2), seeds=(0,),
                 train: dict | None = None, rank: int | None = None, method: dict | None = None):
    """The in-memory profile of the experiment (validated like any profile)."""
    from cel.config import ProjectConfig, validate

    spec = {**PLANTED, **(planted or {})}
    if max(ks) > spec["items"]:
        raise ValueError(f"{NAME}: M_q up to {max(ks)} > items ({spec['items']})")
    raw = {"results_dir": str(Path(work)), "archives_dir": str(Path(work) / "archives"),
           "datasets": {DATASET: {"kind": "synthetic", **spec}}, "variants": {"original": {"kind": "original"}},
           "split": {"folds": 5, "seed": 0},
           "models": {"nmf": {"rank": int(rank or spec["rank"]), "reg": 1.0, "nonneg": "abs"}},
           "methods": {"cel": dict(method or {})}, "train": {**TRAIN, **(train or {})},
           "grid": [{"datasets": [DATASET], "methods": ["cel"], "compressions": [100.0 * k / spec["items"] for k in ks],
                     "folds": list(folds), "seeds": list(seeds)}],
           "tables": []}
    return ProjectConfig.from_dict(validate(raw))


def prop1_experiment(work: str | Path, log=None, **kw) -> pd.DataFrame:
    """Run (or reuse) every run of the experiment; rows (k, planted, fold, seed, clusters, val_mse, test_mse)."""
    from cel.config import config_hash
    from cel.train.run import execute_run

    cfg = prop1_config(work, **kw)
    planted = cfg.dataset(DATASET)["clusters"]
    m = cfg.dataset(DATASET)["items"]
    rows = []
    for key in cfg.runs():
        out = key.path(cfg.results_dir)
        done = out / "metrics.json"
        if not done.exists() or read_metrics(out)["tags"]["config_hash"] != config_hash(cfg.resolved_run(key)):
            execute_run(cfg, key, out, threads=1, log=log or (lambda msg: None))     # new, or its settings changed
        met = read_metrics(out)["metrics"]
        rows.append({"k": int(round(float(key.compression) * m / 100)), "planted": planted, "fold": key.fold,
                     "seed": key.seed, "clusters": met.get("final_clusters_item"), "val_mse": met["val_mse"],
                     "test_mse": met["test_mse"]})
    return pd.DataFrame(rows)


def prop1_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows (metric, k, mean, se, n) plus the planted count, the argmin of each metric and ``k_1se``:
    the smallest M_q whose mean is within one standard error of the minimum (the one-s.e. rule;
    past the planted count extra clusters only duplicate rows, so the curve goes flat rather than
    back up, and the argmin itself can land anywhere on the plateau)."""
    out = []
    for metric in ("val_mse", "test_mse"):
        st = fold_stats(runs.rename(columns={metric: "value"})[["k", "fold", "seed", "value"]], ["k"])
        st["metric"] = metric
        best = st.loc[st["mean"].idxmin()]
        st["argmin"] = int(best["k"])
        st["k_1se"] = int(st[st["mean"] <= best["mean"] + best["se"]]["k"].min())
        out.append(st)
    pts = pd.concat(out, ignore_index=True)
    pts["planted"] = int(runs["planted"].iloc[0])
    if "clusters" in runs:            # what CEL reached under the cap (the split threshold d can stop it short)
        pts["clusters_reached"] = pts["k"].map(pd.to_numeric(runs["clusters"], errors="coerce").groupby(runs["k"]).mean())
    return pts[["metric", "k", "mean", "se", "n", "planted", "argmin", "k_1se"]
               + (["clusters_reached"] if "clusters_reached" in pts else [])]


def prop1_plot(runs: pd.DataFrame, out: str | Path) -> pd.DataFrame:
    pts = prop1_points(runs)
    planted = int(pts["planted"].iloc[0])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for metric, style in (("val_mse", "o-"), ("test_mse", "s--")):
        sub = pts[pts["metric"] == metric].sort_values("k")
        ax.errorbar(sub["k"], sub["mean"], yerr=sub["se"], fmt=style, capsize=2, ms=4,
                    label=f"{metric.replace('_mse', '')} MSE (min at {int(sub['argmin'].iloc[0])}, "
                          f"1-s.e. rule {int(sub['k_1se'].iloc[0])})")
    ax.axvline(planted, color="k", ls=":", lw=1, label=f"planted K = {planted}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(pts["k"].unique()))
    ax.set_xticklabels([str(k) for k in sorted(pts["k"].unique())])
    ax.set_xlabel("cap on the number of item clusters $M_q$")
    ax.set_ylabel("MSE (mean ± s.e. over folds)")
    ax.set_title("Proposition 1 on planted NMF data", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, out, pts)
    return pts
