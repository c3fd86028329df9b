"""Exact cluster reassignment (Eq. 4) in units of one full-batch NMF step: ratios measured in one run.

For ML-100k (a seeded 80% of u.data, as benchmarks/bench_cel.py) and the ~1M-interaction synthetic
set, at item compressions 5%, 1% and 0.5% (K = round(c·M) clusters of the M items), R = 64:

* step:     one full-batch NMF step on (N, R) user and (M, R) item tables: gather_dot forward
            (SDDMM), loss Σ(pred − x)² + 0.5·reg·(‖A‖² + ‖B‖²), backward, SGD step, abs_();
* reassign: ``cluster_losses`` (squared error, the dot-product fast path) + ``reassign`` over all
            M items; the EntityInteractions are built once, outside the timing;
* bce:      the same with ``loss_terms`` = binary cross-entropy on 0/1 labels (rating >= 4),
            for information (still in units of the squared-error step).

Both are timed alternately (step, reassign, bce, step, ...) and the medians are compared.
Goal: reassign / step <= 2 at every compression. This is a benchmark, not a timed test: absolute
times depend on the machine and its load; the ratios come from one process and one run.

    CEL_DATA_MIRROR=/work/shared/data/movielens .venv/bin/python benchmarks/bench_reassign.py \
        [--threads 1] [--reps 21] [--json out.json]
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

from cel.cluster.interactions import EntityInteractions
from cel.cluster.reassign import cluster_losses, reassign
from cel.data.fetch import read_member
from cel.data.parsers import parse_ratings
from cel.data.prepare import remap
from cel.data.sources import SOURCES
from cel.data.synthetic import SyntheticSpec, generate
from cel.models.nmf import NMF
from cel.models.pairs import PairIndex, gather_dot, sort_pairs
from cel.train.tasks import Conversion

R, REG, LR, GOAL = 64, 1.0, 1e-5, 2.0
COMPRESSIONS = (5.0, 1.0, 0.5)
DEFAULT_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens"


def load_ml100k(mirror: Path):
    """A seeded 80% of u.data with ids remapped (as benchmarks/bench_cel.py's load_ml100k)."""
    archive = mirror / SOURCES["ml-100k"].archive
    if not archive.is_file():
        print(f"(ML-100k skipped: {archive} not found; set CEL_DATA_MIRROR)")
        return None
    data, _ = read_member(archive, SOURCES["ml-100k"].members["ratings"])
    inter = parse_ratings(data, "u.data", "\t")
    inter, _ = remap(inter, inter[["raw_item"]].drop_duplicates().assign(title="", genres=""))
    return inter[np.random.default_rng(0).random(len(inter)) < 0.8]


def load_synthetic():
    inter, _ = generate(SyntheticSpec(users=10000, items=5000, clusters=50, rank=8, density=0.02, seed=0))
    inter, _ = remap(inter, inter[["raw_item"]].drop_duplicates().assign(title="", genres=""))
    return inter


class Step:
    """One full-batch NMF step on plain (N, R) and (M, R) tables (as bench_nmf_step.py's fast path)."""

    def __init__(self, pairs: PairIndex, y: torch.Tensor, g: torch.Generator):
        self.pairs, self.y = pairs, y
        self.A = (0.1 * torch.rand(pairs.n_users, R, generator=g)).requires_grad_()
        self.B = (0.1 * torch.rand(pairs.n_items, R, generator=g)).requires_grad_()
        self.opt = torch.optim.SGD([self.A, self.B], lr=LR)

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        pred = gather_dot(self.A, self.B, self.pairs)
        loss = (pred - self.y).pow(2).sum() + 0.5 * REG * (self.A.pow(2).sum() + self.B.pow(2).sum())
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.A.abs_()
            self.B.abs_()


def timed_alternating(fns: list, reps: int, warmup: int = 3) -> list[float]:
    """Median seconds of each function, called in turn so that machine drift hits all alike."""
    for _ in range(warmup):
        for f in fns:
            f()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for f, ts in zip(fns, times):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def bench(name: str, frame, reps: int) -> list[dict]:
    u, i, r = (frame[c].to_numpy() for c in ("user", "item", "rating"))
    n_users, n_items = int(u.max() + 1), int(i.max() + 1)
    o = sort_pairs(u, i)
    pairs = PairIndex.build(u[o], i[o], n_users, n_items)
    step = Step(pairs, torch.as_tensor(r[o], dtype=torch.float32), torch.Generator().manual_seed(0))
    inter = EntityInteractions.from_arrays(i, u, r, n_items, n_users)                  # item side, once
    labels = Conversion().labels(inter.targets)
    binary = EntityInteractions(inter.crow, inter.other, labels, n_users)
    counts, model, bce = inter.counts(), NMF(), Conversion().loss_terms
    rows = []
    for cr in COMPRESSIONS:
        K = max(1, min(n_items, round(cr / 100.0 * n_items)))
        g = torch.Generator().manual_seed(1)
        current = torch.randint(K, (n_items,), generator=g)
        centroids = 0.1 * torch.rand(K, R, generator=g)

        def exact() -> torch.Tensor:
            return reassign(cluster_losses(model, step.A.detach(), inter, centroids, "item"), current, counts)

        def exact_bce() -> torch.Tensor:
            return reassign(cluster_losses(model, step.A.detach(), binary, centroids, "item", bce), current, counts)

        t_step, t_re, t_bce = timed_alternating([step, exact, exact_bce], reps)
        rows.append({"dataset": name, "users": n_users, "items": n_items, "D": len(inter), "compression": cr,
                     "clusters": K, "threads": torch.get_num_threads(), "step_ms": 1e3 * t_step,
                     "reassign_ms": 1e3 * t_re, "reassign_in_steps": t_re / t_step,
                     "bce_reassign_ms": 1e3 * t_bce, "bce_in_steps": t_bce / t_step,
                     "goal_met": t_re / t_step <= GOAL})
        r_ = rows[-1]
        print(f"{name:<13} {len(inter):>8} {cr:>4g} {K:>4} {r_['step_ms']:>8.2f} {r_['reassign_ms']:>11.2f} "
              f"{r_['reassign_in_steps']:>7.2f} {r_['bce_reassign_ms']:>7.2f} {r_['bce_in_steps']:>7.2f}  "
              f"{'goal met' if r_['goal_met'] else 'MISSED'}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--reps", type=int, default=21, help="timed repeats on ML-100k (synthetic: a third)")
    ap.add_argument("--mirror", default=None, help=f"folder with ml-100k.zip (default $CEL_DATA_MIRROR or "
                                                   f"{DEFAULT_MIRROR})")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), R={R}; "
          f"goal: reassign <= {GOAL:g} NMF steps; load average {os.getloadavg()[0]:.2f}")
    hdr = (f"{'dataset':<13} {'D':>8} {'cr%':>4} {'K':>4} {'step ms':>8} {'reassign ms':>11} {'= steps':>7} "
           f"{'bce ms':>7} {'= steps':>7}")
    print(hdr + "\n" + "-" * len(hdr), flush=True)
    rows = []
    ml = load_ml100k(Path(args.mirror or os.environ.get("CEL_DATA_MIRROR") or DEFAULT_MIRROR))
    if ml is not None:
        rows += bench("ml-100k", ml, args.reps)
    rows += bench("synthetic-1M", load_synthetic(), max(3, args.reps // 3))
    met = all(r["goal_met"] for r in rows)
    print(f"{'goal met' if met else 'MISSED'}: reassign / step <= {GOAL:g} at "
          f"{sum(r['goal_met'] for r in rows)} of {len(rows)} settings (worst "
          f"{max(r['reassign_in_steps'] for r in rows):.2f} steps)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
