"""Figure 7(b): the share of CEL's cluster embeddings (rows of B_q) that lie outside the central
region C of the nonnegative orthant, against training steps.

C (Definition 1, B.1.2, from Fu et al.) is the second-order cone around the all-ones direction,

    C = { x : xᵀ1 >= sqrt(R-1) · ||x||₂ },

i.e. the vectors whose angle to 1 is at most arccos(sqrt((R-1)/R)) (7.2° for R = 64). A row b of
B_q is *outside C* when bᵀ1 < sqrt(R-1)·||b||₂. Sufficient scatteredness needs cone(B_qᵀ) ⊇ C, so
rows outside C (towards the orthant's boundary) are what it takes; the paper shows the share
reaching 100% within 2000 iterations on ML-1m. CEL's rows start inside: B_q's first row is the
mean of many random nonnegative vectors (D.1), almost parallel to 1, and a split copies its parent.

This is a small experiment of its own (no run of the grid records B_q during training): for each
run key it trains CEL exactly as ``cel train`` would (same data, build, trainer, schedule), for
``steps`` steps without early stopping, and records, every ``every`` steps, the number of
clusters and the share of them outside C. Nothing is evaluated on test.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cel.figs.common import pyplot, save

NAME = "fig7b"


def outside_c(rows: np.ndarray) -> np.ndarray:
    """(K,) True where a row x lies outside C: xᵀ1 < sqrt(R-1)·||x||₂ (a zero row counts as inside)."""
    rows = np.asarray(rows, dtype=np.float64)
    r = rows.shape[1]
    return rows.sum(axis=1) < math.sqrt(r - 1) * np.linalg.norm(rows, axis=1) - 1e-12


class OutsideCProbe:
    """Trainer callback: every ``every`` steps, the item clusters' share outside C."""

    def __init__(self, emb, every: int):
        self.emb, self.every, self.rows = emb, every, []

    def _record(self, step: int) -> None:
        k = int(self.emb.n_clusters)
        out = outside_c(self.emb.centroids[:k].detach().cpu().numpy())
        self.rows.append({"step": step, "clusters": k, "outside": int(out.sum()), "share_outside": float(out.mean())})

    def on_fit_start(self, trainer) -> None:
        self._record(0)

    def on_step_end(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self._record(trainer.step)

    def on_after_backward(self, trainer) -> None: ...
    def on_eval(self, trainer, metrics) -> None: ...
    def on_fit_end(self, trainer) -> None: ...

    def ready(self, trainer) -> bool:
        return True


def outside_c_trajectory(cfg, key, steps: int = 2000, every: int = 25, threads: int | None = 1,
                         log=None) -> pd.DataFrame:
    """Train one CEL run (``key``: a RunKey of a CEL method) for ``steps`` steps; rows (step,
    clusters, outside, share_outside) plus the key's fields."""
    import tempfile

    from cel.embeddings.cel import CELEmbedding
    from cel.train import run

    log = log or (lambda msg: None)
    d = run.load(cfg, key, threads)
    d = replace(d, train_cfg=replace(d.train_cfg, steps=steps, patience=0))
    parts = run.build(cfg, d)
    if not isinstance(parts.item_emb, CELEmbedding):
        raise ValueError(f"{NAME}: {key} is not a CEL run (item embedding {type(parts.item_emb).__name__})")
    probe = OutsideCProbe(parts.item_emb, every)
    parts.schedules.append(probe)           # run.train hands parts.schedules to the trainer as callbacks
    with tempfile.TemporaryDirectory() as tmp:
        run.train(cfg, d, parts, Path(tmp), log)
    return pd.DataFrame(probe.rows).assign(**{k: str(v) for k, v in key.as_dict().items()})


def fig7b_experiment(cfg, keys, steps: int = 2000, every: int = 25, threads: int | None = 1, log=None) -> pd.DataFrame:
    return pd.concat([outside_c_trajectory(cfg, k, steps, every, threads, log) for k in keys], ignore_index=True)


def fig7b_plot(traj: pd.DataFrame, out: str | Path) -> pd.DataFrame:
    if traj.empty:
        raise ValueError(f"{NAME}: empty trajectory")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for (dataset, method, comp, fold, seed), sub in traj.groupby(["dataset", "method", "compression", "fold", "seed"],
                                                                 sort=False):
        ax.plot(sub["step"], 100 * sub["share_outside"],
                label=f"{method} {comp}% ({int(sub['clusters'].iloc[-1])} clusters), f{fold}")
    ax.set_xlabel("training step")
    ax.set_ylabel("cluster embeddings outside C (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(f"rows of $B_q$ outside the central region C, {traj['dataset'].iloc[0]}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, out, traj)
    return traj
