"""CEL speed benchmark: ratios measured in one run (not a timed test; these machines are noisy).

Prints, for ML-100k (80% of the ratings, seeded) and a ~1M-interaction synthetic set:
  * CEL embedding-step time / full-embedding step time        (issue goal <= 1.15)
  * reassignment time (Eq. 4, exact fast path) in units of one CEL step   (goal <= 2)
  * GPCA split time in units of one CEL step (including Eq. 5's per-entity gradients, which the
    schedule computes on every split-due step: ``ClusterSchedule.entity_grads``)
at item compressions 5% and 1%, with the same trainer, data and thread count.

    .venv/bin/python benchmarks/bench_cel.py [--threads 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from cel.config import TrainConfig
from cel.data.fetch import read_member
from cel.data.parsers import parse_ratings
from cel.data.prepare import remap
from cel.data.sources import SOURCES
from cel.data.synthetic import SyntheticSpec, generate
from cel.embeddings.cel import CELEmbedding, CELParams
from cel.embeddings.full import FullEmbedding
from cel.models.nmf import NMF
from cel.models.pairs import PairIndex, sort_pairs
from cel.train.schedule import ClusterSchedule
from cel.train.trainer import Trainer, full_batch_trainer

R = 64


def load_ml100k():
    mirror = Path(os.environ.get("CEL_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared/data/movielens")
    archive = mirror / "ml-100k.zip"
    if not archive.exists():
        print(f"(ML-100k skipped: {archive} not found)")
        return None
    src = SOURCES["ml-100k"]
    data, _ = read_member(archive, src.members["ratings"])
    inter = parse_ratings(data, "u.data", "\t")
    inter, _ = remap(inter, inter[["raw_item"]].drop_duplicates().assign(title="", genres=""))
    keep = np.random.default_rng(0).random(len(inter)) < 0.8
    return inter[keep]


def load_synthetic():
    inter, _ = generate(SyntheticSpec(users=10000, items=5000, clusters=50, rank=8, density=0.02, seed=0))
    inter, _ = remap(inter, inter[["raw_item"]].drop_duplicates().assign(title="", genres=""))
    return inter


def pairs_of(inter) -> tuple[PairIndex, torch.Tensor]:
    """(pairs sorted by (user, item) as the run driver sorts them, ratings (D,)) of an interaction
    table (the run driver: ``cel.train.feeds.InteractionTable.from_frame(...).pairs()``)."""
    u, i = inter["user"].to_numpy(), inter["item"].to_numpy()
    o = sort_pairs(u, i)
    pairs = PairIndex.build(u[o], i[o], int(u.max() + 1), int(i.max() + 1))
    return pairs, torch.as_tensor(inter["rating"].to_numpy()[o], dtype=torch.float32)


def trainer_for(inter, method: str, compression: float, m0: int = 0) -> Trainer:
    pairs, y = pairs_of(inter)
    n_users, n_items = pairs.n_users, pairs.n_items
    g = torch.Generator().manual_seed(0)
    ue = FullEmbedding(n_users, R, 100.0, FullEmbedding.Params(), g)
    if method == "full":
        ie, cbs = FullEmbedding(n_items, R, 100.0, FullEmbedding.Params(), g), []
    else:
        params = CELParams(m0=m0) if m0 else CELParams(split=False)             # m0=0: start at the budget
        ie = CELEmbedding(n_items, R, compression, params, g)
        cbs = [ClusterSchedule("item")]
    cfg = TrainConfig(optimizer="gd", lr=1e-5, steps=1, eval_every=10**9, log_every=10**9)
    return full_batch_trainer(NMF(), ue, ie, pairs, y, cfg, reg=1.0, callbacks=cbs, log=lambda m: None)


def batch_of(t: Trainer):
    """The full feed's batch, built once per trainer as ``Trainer.fit`` does (one ``batches()``
    generator for the whole run: the batch and its PairIndex are built once, not per step)."""
    if getattr(t, "_bench_batch", None) is None:
        t._bench_batch = next(t.feed.batches())
    return t._bench_batch


def one_step(t: Trainer) -> None:
    """Exactly the trainer's step (the same code path as training)."""
    t.train_step(batch_of(t))


def timed(fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def timed_pair(fa, fb, reps: int, warmup: int = 3) -> tuple[float, float]:
    """Median times of fa and fb measured alternately, so machine drift hits both alike."""
    for _ in range(warmup):
        fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        fa()
        t1 = time.perf_counter()
        fb()
        ta.append(t1 - t0)
        tb.append(time.perf_counter() - t1)
    return statistics.median(ta), statistics.median(tb)


def bench(name: str, inter, reps: int) -> list[dict]:
    rows = []
    full = trainer_for(inter, "full", 100.0)
    for cr in (5.0, 1.0):
        cel = trainer_for(inter, "cel", cr)
        t_full, t_cel = timed_pair(lambda: one_step(full), lambda: one_step(cel), reps)
        sched = cel.callbacks[0]
        t_re = timed(lambda: sched.best_assignment(cel), max(3, reps // 3), warmup=1)

        half = trainer_for(inter, "cel", cr, m0=max(1, cel.item_emb.max_clusters // 2))  # room to split

        splits, grads = [], []
        hs = half.callbacks[0]
        for _ in range(min(5, half.item_emb.max_clusters - half.item_emb.n_clusters - 1)):
            one_step(half)                     # a split-due step (half.step = 0), not timed
            # The split's cost includes Eq. 5's per-entity gradients G: the schedule computes them
            # in on_after_backward of a split-due step (entity_grads, an extra forward/backward on
            # the entities' interactions). Timed here once more, then split_once (GPCA + split)
            # uses the ones on_after_backward stored.
            t0 = time.perf_counter()
            hs.entity_grads(half)
            t1 = time.perf_counter()
            hs.split_once(half)
            grads.append(t1 - t0)
            splits.append(time.perf_counter() - t0)
        t_split, t_grads = statistics.median(splits), statistics.median(grads)
        rows.append({"dataset": name, "D": len(inter), "compression": cr, "clusters": cel.item_emb.n_clusters,
                     "threads": torch.get_num_threads(), "full_step_ms": 1e3 * t_full,
                     "cel_step_ms": 1e3 * t_cel, "step_ratio": t_cel / t_full,
                     "reassign_ms": 1e3 * t_re, "reassign_in_steps": t_re / t_cel,
                     "split_ms": 1e3 * t_split, "split_in_steps": t_split / t_cel,
                     "split_grads_ms": 1e3 * t_grads})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    ml = load_ml100k()
    if ml is not None:
        rows += bench("ml-100k", ml, reps=30)
    rows += bench("synthetic-1M", load_synthetic(), reps=8)
    hdr = f"{'dataset':<13} {'D':>8} {'cr%':>4} {'K':>4} {'full ms':>8} {'CEL ms':>8} {'CEL/full':>8} " \
          f"{'reassign ms':>11} {'= steps':>7} {'split ms':>8} {'= steps':>7}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['dataset']:<13} {r['D']:>8} {r['compression']:>4g} {r['clusters']:>4} {r['full_step_ms']:>8.2f} "
              f"{r['cel_step_ms']:>8.2f} {r['step_ratio']:>8.3f} {r['reassign_ms']:>11.2f} "
              f"{r['reassign_in_steps']:>7.2f} {r['split_ms']:>8.2f} {r['split_in_steps']:>7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
