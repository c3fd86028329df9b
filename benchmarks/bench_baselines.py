"""Baseline speed benchmark: each method's training step in units of a full-embedding step.

Ratios measured in one run (not a timed test; these machines are noisy). For ML-100k (80% of the
ratings, seeded) at item compressions 5% and 1%, every registered method (and the PreHash K=4 /
K=M_q variants) runs the trainer's own step with its callbacks (gradient averaging, the method's
StepAware schedule), interleaved with the full-embedding step:

  * step ratio      = method step / full step (medians)              (Table 2's "LTC" column)
  * one-off cost    = fit_data (HashGNN pretraining, AE/PreHash warmth) in full steps
  * stored / trained parameters: what num_parameters() counts at test time, and the parameters
    held while training (memory, "LMC"; HashGNN's pretraining encoder is discarded before)

CEL runs with M_0 = the budget (no splits, as in bench_cel.py) so that its size is the final
one; its split and reassignment costs are measured by bench_cel.py.

    .venv/bin/python benchmarks/bench_baselines.py [--threads 1] [--steps 20] [--json out.json]
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import time

import numpy as np
import torch

from bench_cel import batch_of, load_ml100k, pairs_of
from cel.config import TrainConfig
from cel.embeddings import EMBEDDINGS, DataAware, TrainingData
from cel.embeddings.full import FullEmbedding
from cel.models.nmf import NMF
from cel.train.grad_avg import GradientAveraging
from cel.train.method_steps import MethodSteps
from cel.train.schedule import ClusterSchedule
from cel.train.trainer import Trainer, full_batch_trainer

R = 64
METHODS = {  # label -> (registry key, params)
    "modulo": ("modulo", {}), "bh": ("bh", {"pooling": "mean"}), "ae": ("ae", {}),
    "etree": ("etree", {}), "jnkm": ("jnkm", {}), "hashgnn": ("hashgnn", {}),
    "prehash_k4": ("prehash", {"top_k": 4}), "prehash_kmq": ("prehash", {"top_k": 0}),
    "cerp": ("cerp", {}), "qr": ("qr", {}), "cel": ("cel", {"split": False}),
}


def build(inter, label: str, compression: float):
    """(trainer, seconds spent in fit_data)."""
    pairs, y = pairs_of(inter)
    n_users, n_items = pairs.n_users, pairs.n_items
    g = torch.Generator().manual_seed(0)
    ue = FullEmbedding(n_users, R, 100.0, FullEmbedding.Params(), g)
    callbacks = [GradientAveraging(), MethodSteps()]
    prep = 0.0
    if label == "full":
        ie = FullEmbedding(n_items, R, 100.0, FullEmbedding.Params(), g)
    else:
        key, params = METHODS[label]
        cls = EMBEDDINGS[key]
        ie = cls(n_items, R, compression, cls.Params(**params), g)
        if isinstance(ie, DataAware):
            t0 = time.perf_counter()
            ie.fit_data(TrainingData(pairs.items, pairs.users, y, n_items, n_users))
            prep = time.perf_counter() - t0
        if key == "cel":
            callbacks.append(ClusterSchedule("item"))
    cfg = TrainConfig(optimizer="gd", lr=1e-4, steps=1, eval_every=10**9, log_every=10**9)
    t = full_batch_trainer(NMF(), ue, ie, pairs, y, cfg, reg=1.0, callbacks=callbacks, log=lambda m: None)
    t.constrain()
    t.trigger("on_fit_start")
    return t, prep


def step(t: Trainer) -> float:
    """One step exactly as Trainer.fit runs it on the full feed (train_step, then on_step_end)."""
    batch = batch_of(t)
    t0 = time.perf_counter()
    t.step += 1
    t.train_step(batch)
    t.trigger("on_step_end")
    return time.perf_counter() - t0


def measure(inter, label: str, compression: float, steps: int, warmup: int = 3) -> dict:
    full, _ = build(inter, "full", 100.0)
    meth, prep = build(inter, label, compression)
    for _ in range(warmup):
        step(full)
        step(meth)
    tf, tm = [], []
    gc.disable()
    try:
        for k in range(steps):                           # alternate the order: drift hits both alike
            pair = (full, meth) if k % 2 == 0 else (meth, full)
            for t in pair:
                (tf if t is full else tm).append(step(t))
    finally:
        gc.enable()
    f, m = statistics.median(tf), statistics.median(tm)
    emb = meth.item_emb
    trained = sum(p.numel() for p in emb.parameters())
    return {"method": label, "compression": compression, "full_ms": 1e3 * f, "method_ms": 1e3 * m,
            "step_ratio": m / f, "fit_data_in_steps": prep / f,
            "stored_params": emb.num_parameters(), "trained_params": trained}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per side (each method)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    inter = load_ml100k()
    if inter is None:
        return
    rows = []
    for label in args.methods.split(","):
        for cr in (5.0, 1.0):
            r = measure(inter, label, cr, args.steps)
            rows.append(r)
            print(f"[bench] {label} {cr:g}%: {r['method_ms']:.2f} ms vs full {r['full_ms']:.2f} ms", flush=True)
    print(f"\nML-100k (80%), R={R}, {args.threads} thread(s), {args.steps} interleaved steps per side")
    print(f"{'method':<12} | {'cr':>4} | {'step / full step':>16} | {'fit_data in steps':>17} | "
          f"{'stored params':>13} | {'trained params':>14}")
    print("-" * 96)
    for r in rows:
        print(f"{r['method']:<12} | {r['compression']:>3g}% | {r['step_ratio']:>16.2f} | "
              f"{r['fit_data_in_steps']:>17.1f} | {r['stored_params']:>13,} | {r['trained_params']:>14,}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "steps": args.steps, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
