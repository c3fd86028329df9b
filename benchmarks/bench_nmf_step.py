"""Benchmark: one full-batch NMF training step, cel's fast path against plain autograd.

What is measured (CPU, float32, rank R = 64), per step:

    zero_grad -> pred -> loss = sum((pred - x)^2) + 0.5*reg*(||A||^2 + ||B||^2)
              -> backward -> SGD step -> A.abs_(), B.abs_()   (nonnegativity, as NMF(nonneg="abs"))

with two ways of computing ``pred``:

* ``fast``     -- ``cel.models.pairs.gather_dot(A, B, pairs)`` (custom autograd op: gathered
                  row-dot forward, sparse CSR @ dense backward), the path the trainer uses;
* ``autograd`` -- ``(A[u] * B[i]).sum(1)`` with ordinary autograd (the backward of the index
                  gather is an index_put/scatter-add into the embedding tables).

Data sets: (a) MovieLens-100k, a seeded random 80% of u.data (80,000 interactions, 943 users,
1,682 items) read through cel's parsers from the mirror (``CEL_DATA_MIRROR`` or
``../shared/data/movielens``; skipped with a message if the archive is missing) and (b) a
synthetic set of ~1M interactions from ``cel.data.synthetic.generate``.

For every data set and thread count (``torch.set_num_threads``) both implementations start from
the same initial tables, run warm-up steps, then timed steps in alternating blocks
(fast, autograd, autograd, fast, ...) so that machine drift hits both alike. Reported: median
and mean milliseconds per step and the ratio autograd/fast (``speedup``). Before timing, the
gradients of both implementations on the first step are compared (max abs difference, and
relative to the largest gradient entry), each also against a float64 autograd reference.

This is a benchmark, not a timed test: absolute times depend on the machine and its load; the
ratios are meaningful because both sides are measured in the same process, interleaved. Nothing
here asserts a speed. (The fast path's forward is the sampled_addmm SDDMM this benchmark first
measured as a candidate: 5-10x per step over the gathered row-dot it replaced.)

Run:  cd /work/main && .venv/bin/python benchmarks/bench_nmf_step.py [--json out.json]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cel.data.fetch import DataError, read_member
from cel.data.parsers import parse_ml_100k
from cel.data.prepare import remap
from cel.data.sources import SOURCES
from cel.data.synthetic import SyntheticSpec, generate
from cel.embeddings.base import init_vectors
from cel.models.pairs import PairIndex, gather_dot, sort_pairs

RANK = 64
REG = 1.0                      # config/config.yaml: models.nmf.reg
REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "data" / "movielens"


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    pairs: PairIndex
    y: torch.Tensor            # (D,) float32 ratings, in the pairs' (user, item) order
    lr: float
    steps: int
    note: str = ""


def build_pairs(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int):
    """As the run driver builds them (cel.train.feeds.InteractionTable.from_frame(...).pairs():
    sort by (user, item), then PairIndex.build)."""
    order = sort_pairs(users, items)
    pairs = PairIndex.build(users[order], items[order], n_users, n_items)
    return pairs, torch.as_tensor(ratings[order], dtype=torch.float32)


def load_ml100k(mirror: Path, fraction: float, seed: int, lr: float, steps: int) -> Dataset | None:
    archive = mirror / SOURCES["ml-100k"].archive
    if not archive.is_file():
        print(f"[bench] SKIP ml-100k: archive not found at {archive} "
              f"(set CEL_DATA_MIRROR or --mirror to a folder holding ml-100k.zip)", flush=True)
        return None
    try:
        members = SOURCES["ml-100k"].members
        ratings, _ = read_member(archive, members["ratings"])   # checksum-verified
        items, _ = read_member(archive, members["items"])
        inter, meta = parse_ml_100k(ratings, items, (f"{archive.name}:u.data", f"{archive.name}:u.item"))
    except DataError as exc:
        print(f"[bench] SKIP ml-100k: {exc}", flush=True)
        return None
    frame, meta = remap(inter, meta)
    n_users, n_items = int(frame["user"].max()) + 1, int(frame["item"].max()) + 1
    keep = np.random.default_rng(seed).permutation(len(frame))[: int(round(fraction * len(frame)))]
    train = frame.iloc[np.sort(keep)]
    pairs, y = build_pairs(train["user"].to_numpy(), train["item"].to_numpy(), train["rating"].to_numpy(),
                           n_users, n_items)
    return Dataset("ml-100k", pairs, y, lr, steps, note=f"seeded {fraction:.0%} of u.data (seed {seed})")


def load_synthetic(lr: float, steps: int) -> Dataset:
    spec = SyntheticSpec(users=10000, items=5000, density=0.02, rank=8, clusters=50, seed=0)
    t0 = time.perf_counter()
    inter, items = generate(spec)
    frame, _ = remap(inter, items)
    n_users, n_items = int(frame["user"].max()) + 1, int(frame["item"].max()) + 1
    pairs, y = build_pairs(frame["user"].to_numpy(), frame["item"].to_numpy(), frame["rating"].to_numpy(),
                           n_users, n_items)
    if abs(len(pairs) - 1_000_000) > 50_000:
        print(f"[bench] WARNING: synthetic set has {len(pairs)} interactions, expected ~1,000,000", flush=True)
    return Dataset("synthetic-1M", pairs, y, lr, steps,
                   note=f"SyntheticSpec(10000, 5000, density=0.02, rank=8, clusters=50, seed=0), "
                        f"generated in {time.perf_counter() - t0:.1f}s")


# --------------------------------------------------------------------------------------------
# the implementations
# --------------------------------------------------------------------------------------------
def pred_fast(A, B, pairs):
    return gather_dot(A, B, pairs)


def pred_autograd(A, B, pairs):
    return (A[pairs.users] * B[pairs.items]).sum(1)


IMPLS = {"fast": pred_fast, "autograd": pred_autograd}


def loss_fn(pred_impl, A, B, pairs, y, reg):
    pred = pred_impl(A, B, pairs)
    return (pred - y).pow(2).sum() + 0.5 * reg * (A.pow(2).sum() + B.pow(2).sum())


class Stepper:
    """One implementation's own parameters + SGD optimiser (as the full-feed Trainer with optimizer gd)."""

    def __init__(self, impl: str, A0, B0, ds: Dataset):
        self.impl, self.pred, self.ds = impl, IMPLS[impl], ds
        self.A = A0.clone().requires_grad_(True)
        self.B = B0.clone().requires_grad_(True)
        self.opt = torch.optim.SGD([self.A, self.B], lr=ds.lr)
        self.times: list[float] = []
        self.last_loss = float("nan")

    def step(self) -> float:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = loss_fn(self.pred, self.A, self.B, self.ds.pairs, self.ds.y, REG)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.A.abs_()
            self.B.abs_()
        dt = time.perf_counter() - t0
        self.last_loss = loss.item()         # outside the timed region (as in the trainer)
        return dt


def initial_tables(ds: Dataset, seed: int):
    g = torch.Generator().manual_seed(seed)
    A0 = init_vectors(ds.pairs.n_users, RANK, g).abs_()    # the trainer constrains before step 1
    B0 = init_vectors(ds.pairs.n_items, RANK, g).abs_()
    return A0, B0


# --------------------------------------------------------------------------------------------
# correctness: gradients of the first step
# --------------------------------------------------------------------------------------------
def grads(pred_impl, A0, B0, ds: Dataset, dtype=torch.float32):
    A = A0.to(dtype).clone().requires_grad_(True)
    B = B0.to(dtype).clone().requires_grad_(True)
    loss = loss_fn(pred_impl, A, B, ds.pairs, ds.y.to(dtype), REG)
    loss.backward()
    return loss.detach(), A.grad, B.grad


def _cmp(a: torch.Tensor, b: torch.Tensor) -> dict:
    diff = (a.double() - b.double()).abs().max().item()
    scale = b.double().abs().max().item()
    return {"max_abs": diff, "rel": diff / scale if scale > 0 else diff}


def grad_check(ds: Dataset, A0, B0, impls: list[str], tol: float) -> dict:
    out = {}
    ref_loss, ref_gA, ref_gB = grads(pred_autograd, A0, B0, ds, torch.float64)
    res = {name: grads(IMPLS[name], A0, B0, ds) for name in impls}
    base_loss, base_gA, base_gB = res["autograd"]
    for name in impls:
        loss, gA, gB = res[name]
        row = {"vs_float64": {"gA": _cmp(gA, ref_gA), "gB": _cmp(gB, ref_gB),
                              "loss_rel": abs(loss.item() - ref_loss.item()) / abs(ref_loss.item())}}
        if name != "autograd":
            row["vs_autograd"] = {"gA": _cmp(gA, base_gA), "gB": _cmp(gB, base_gB),
                                  "loss_rel": abs(loss.item() - base_loss.item()) / abs(base_loss.item())}
            row["ok"] = max(row["vs_autograd"]["gA"]["rel"], row["vs_autograd"]["gB"]["rel"]) < tol
        out[name] = row
    return out


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
def time_dataset(ds: Dataset, threads: int, impls: list[str], warmup: int, block: int, seed: int) -> dict:
    torch.set_num_threads(threads)
    A0, B0 = initial_tables(ds, seed)
    steppers = [Stepper(name, A0, B0, ds) for name in impls]
    for s in steppers:
        for _ in range(warmup):
            s.step()
    gc.collect()
    gc.disable()
    try:
        rnd = 0
        while min(len(s.times) for s in steppers) < ds.steps:
            order = steppers if rnd % 2 == 0 else steppers[::-1]     # ABBA: no side always first
            for s in order:
                for _ in range(min(block, ds.steps - len(s.times))):
                    s.times.append(s.step())
            rnd += 1
    finally:
        gc.enable()
    out = {"threads": threads, "torch_threads": torch.get_num_threads(), "impls": {}}
    for s in steppers:
        ms = [t * 1e3 for t in s.times]
        out["impls"][s.impl] = {
            "median_ms": statistics.median(ms), "mean_ms": statistics.fmean(ms), "min_ms": min(ms),
            "steps": len(ms), "final_loss": s.last_loss, "finite": bool(np.isfinite(s.last_loss)),
            "step_ms": ms,
        }
    fast = out["impls"]["fast"]
    for name, r in out["impls"].items():
        r["speedup_vs_fast_median"] = r["median_ms"] / fast["median_ms"]
        r["speedup_vs_fast_mean"] = r["mean_ms"] / fast["mean_ms"]
    return out


# --------------------------------------------------------------------------------------------
def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):      # not available on this platform
        return None


def _busy_cpus(window: float = 1.0) -> float | None:
    """CPUs kept busy by other processes, sampled from /proc/stat while this one sleeps (Linux)."""
    def read():
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle
    try:
        t0, i0 = read()
        time.sleep(window)
        t1, i1 = read()
    except (OSError, ValueError, IndexError):
        return None
    return round((os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0)), 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", metavar="PATH", help="also write all numbers (incl. per-step times) as JSON")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    ap.add_argument("--steps-ml", type=int, default=30, help="timed steps per implementation, ML-100k")
    ap.add_argument("--steps-syn", type=int, default=10, help="timed steps per implementation, synthetic 1M")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps per implementation")
    ap.add_argument("--mirror", default=None,
                    help=f"folder with ml-100k.zip (default: $CEL_DATA_MIRROR or {DEFAULT_MIRROR})")
    ap.add_argument("--no-ml100k", action="store_true", help="skip MovieLens-100k")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic 1M set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    impls = ["fast", "autograd"]
    mirror = Path(args.mirror or os.environ.get("CEL_DATA_MIRROR") or DEFAULT_MIRROR)
    print(f"[bench] torch {torch.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; R={RANK}, reg={REG}, float32",
          flush=True)
    load0, busy0 = _loadavg(), _busy_cpus()
    print(f"[bench] before start: load average (1/5/15 min) {load0}, CPUs busy with other work "
          f"(1 s sample) {busy0}", flush=True)

    datasets: list[Dataset] = []
    if not args.no_ml100k:
        ds = load_ml100k(mirror, 0.8, args.seed, lr=1e-4, steps=args.steps_ml)   # lr of config/config.yaml
        if ds is not None:
            datasets.append(ds)
    if not args.no_synthetic:
        # lr 1e-5: at 1e-4 GD oscillates on this set (users with up to ~5,000 items); timing is unaffected
        datasets.append(load_synthetic(lr=1e-5, steps=args.steps_syn))
    if not datasets:
        print("[bench] nothing to run", flush=True)
        return 1

    report = {"torch": torch.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
              "loadavg_start": load0, "busy_cpus_start": busy0,
              "rank": RANK, "reg": REG, "warmup": args.warmup, "impls": impls, "datasets": []}
    rows = []
    for ds in datasets:
        print(f"[bench] {ds.name}: {ds.pairs.n_users} users, {ds.pairs.n_items} items, "
              f"{len(ds.pairs)} interactions, lr={ds.lr:g}, {ds.steps} timed steps; {ds.note}", flush=True)
        torch.set_num_threads(max(threads))
        A0, B0 = initial_tables(ds, args.seed)
        check = grad_check(ds, A0, B0, impls, tol=1e-4)
        for name in impls:
            if name == "autograd":
                continue
            c = check[name]["vs_autograd"]
            print(f"[bench]   grad check {name} vs autograd (first step): "
                  f"dA max abs {c['gA']['max_abs']:.3g} (rel {c['gA']['rel']:.2e}), "
                  f"dB max abs {c['gB']['max_abs']:.3g} (rel {c['gB']['rel']:.2e}), "
                  f"loss rel {c['loss_rel']:.1e} -> {'OK' if check[name]['ok'] else 'MISMATCH'}", flush=True)
        for name in impls:
            c = check[name]["vs_float64"]
            print(f"[bench]   {name:>8} vs float64 autograd: dA rel {c['gA']['rel']:.2e}, "
                  f"dB rel {c['gB']['rel']:.2e}", flush=True)
        entry = {"name": ds.name, "users": ds.pairs.n_users, "items": ds.pairs.n_items,
                 "interactions": len(ds.pairs), "lr": ds.lr, "timed_steps": ds.steps, "note": ds.note,
                 "grad_check": check, "timings": []}
        block = max(1, ds.steps // 5)
        for t in threads:
            res = time_dataset(ds, t, impls, args.warmup, block, args.seed)
            entry["timings"].append(res)
            rows.append((ds.name, res))
            f, a = res["impls"]["fast"], res["impls"]["autograd"]
            print(f"[bench]   threads={t}: fast {f['median_ms']:.1f} ms, autograd {a['median_ms']:.1f} ms "
                  f"(median of {f['steps']})", flush=True)
            for name, r in res["impls"].items():
                if not r["finite"]:
                    print(f"[bench]   WARNING: {name} loss not finite after timing ({r['final_loss']})")
        report["datasets"].append(entry)

    # ---- table ------------------------------------------------------------------------------
    head = ["dataset", "threads", "fast ms/step (med / mean)", "autograd ms/step (med / mean)",
            "speedup (med / mean)"]
    lines = []
    for name, res in rows:
        f, a = res["impls"]["fast"], res["impls"]["autograd"]
        cells = [name, str(res["threads"]), f"{f['median_ms']:.2f} / {f['mean_ms']:.2f}",
                 f"{a['median_ms']:.2f} / {a['mean_ms']:.2f}",
                 f"{a['speedup_vs_fast_median']:.2f}x / {a['speedup_vs_fast_mean']:.2f}x"]
        lines.append(cells)
    widths = [max(len(h), *(len(c[k]) for c in lines)) for k, h in enumerate(head)]
    fmt = lambda cells: " | ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths)))
    print()
    print("Full-batch NMF step (forward + backward + SGD + abs), R=64, float32; "
          "speedup = autograd / fast (>1: fast path is faster)")
    print(fmt(head))
    print("-+-".join("-" * w for w in widths))
    for cells in lines:
        print(fmt(cells))
    total = time.perf_counter() - t_start
    load1 = _loadavg()
    print(f"\n[bench] total {total:.1f}s; load average at the end (1/5/15 min): {load1}", flush=True)
    if busy0 is not None and busy0 > 0.25:
        print(f"[bench] NOTE: other work kept {busy0:.2f} of {os.cpu_count()} CPUs busy before this run: "
              "timings, multi-thread ones above all, are unreliable under contention "
              "(an OpenMP thread that loses its core stalls every parallel region)", flush=True)
    report["total_seconds"] = total
    report["loadavg_end"] = load1

    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"[bench] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
