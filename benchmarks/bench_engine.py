"""Engine benchmark: the refactored Trainer (Task + Feed) against the old FullBatchTrainer, and CEL's
amortised cost over a whole run. Ratios measured within one run of this script (not a timed
test; these machines are noisy).

(a) Full-batch step, before vs after the refactor (goal: after / before <= 1.05).
    "before" is the package at git commit fd8b454 (the last FullBatchTrainer), extracted with
    ``git archive``; "after" is a snapshot of the working tree's ``src`` taken when this script
    starts. Each runs in its own subprocess (``PYTHONPATH=<that src>``, the venv's python; the
    child checks ``cel.__file__``), which builds two trainers on the same data and seeds:

      * full: NMF, full user and item embeddings,
      * cel:  NMF, full users, CEL items at 5% with ``CELParams(split=False)`` (M_0 = the
              budget, so no split is ever due: the step itself, with gradient averaging),

    both with the run driver's callbacks (GradientAveraging, MethodSteps, + ClusterSchedule for
    CEL), R = 64, GD lr 1e-4, reg 1.0, ML-100k 80% (the seeded sample of bench_cel.load_ml100k).
    The timed region is the one ``fit()`` accumulates into ``step_seconds`` in both versions:
    ``train_step`` (zero_grad, loss, backward, on_after_backward, optimiser step, constraint);
    ``on_step_end`` is not called (with split=False it would only run the reassignment every t1
    steps: schedule work, measured in (b)). After warm-up the child alternates full and cel steps,
    gc off, and reports every step time and the losses (the same in both versions = the same
    computation). The parent alternates the versions: before, after | after, before | ...
    Reported per model: median of all timed steps of each version and the ratio after / before
    of those medians (headline), plus the per-round ratios (adjacent subprocesses).
    A third trainer, for information (no goal): CEL 5% with default CELParams (M_0 = 1, a split
    every t2 = 10 steps, a reassignment every t1 = 40), timed as train_step + on_step_end, i.e.
    the step with the cluster schedule, over the same steps in both versions.

(b) CEL's amortised training time over a whole run relative to full embeddings (goal <= 1.2).
    ``cel.train.run.execute_run`` with a config written into a temp dir (ML-100k, like
    config/quick.yaml but ``steps: 1000``, ``patience: 0``, ``val_fraction: 0.1``,
    ``eval_every: 25``; methods ``full`` and ``cel`` with default parameters: t1 = 40
    reassignment, t2 = 10 split, M_0 = 1), fold 0, seed 0. Runs: full cr100 and CEL cr5, cr1,
    cr0.5, in pairs (full, cel) then (cel, full) in alternate rounds. The measure is the wall time
    of ``Trainer.fit`` (wrapped here), i.e. every step with its callbacks (gradient averaging,
    the cluster schedule's splits and reassignments), the validation evaluations every 25 steps
    and the best-snapshot copies; not data loading, building, test evaluation or writing.
    ``record['timing']['step_seconds']`` alone would miss the schedule (it times ``train_step``
    only, and the splits/reassignments run in ``on_step_end``). Reported: fit seconds per step of
    each CEL run / that of the full run next to it (median over rounds), with a breakdown into
    train_step, on_step_end (schedule) and evaluation, and the ratio of whole execute_run walls.

    .venv/bin/python benchmarks/bench_engine.py [--threads 1] [--rounds 8] [--run-rounds 3] \
        [--json benchmarks/out/engine.json]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "fd8b454"
R, LR, REG = 64, 1e-4, 1.0
CEL_CR_A = 5.0
MODELS_A = ("full", "cel", "cel_sched")
STEP_GOAL, RUN_GOAL = 1.05, 1.2
RUN_COMPRESSIONS = ("5", "1", "0.5")


def mirror_dir() -> Path:
    return Path(os.environ.get("CEL_DATA_MIRROR") or REPO.parent / "shared" / "data" / "movielens")


# ============================================================================ (a) child
def child(args) -> None:
    """Runs under PYTHONPATH=<before or after src>: time train_step of a full and a CEL trainer."""
    import numpy as np
    import torch

    import cel
    expected = Path(args.expect_src).resolve()
    got = Path(cel.__file__).resolve()
    if expected not in got.parents:
        raise SystemExit(f"child imported cel from {got}, expected under {expected}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from cel.config import TrainConfig
    from cel.embeddings.cel import CELEmbedding, CELParams
    from cel.embeddings.full import FullEmbedding
    from cel.models.nmf import NMF
    from cel.models.pairs import PairIndex, sort_pairs
    from cel.train import trainer as trainer_mod
    from cel.train.grad_avg import GradientAveraging
    from cel.train.method_steps import MethodSteps
    from cel.train.schedule import ClusterSchedule

    data = np.load(args.data)
    u, i, r = data["user"], data["item"], data["rating"]
    n_users, n_items = int(data["n_users"]), int(data["n_items"])
    o = sort_pairs(u, i)
    pairs = PairIndex.build(u[o], i[o], n_users, n_items)
    y = torch.as_tensor(r[o], dtype=torch.float32)
    new_api = hasattr(trainer_mod, "full_batch_trainer")

    def build(method: str):
        g = torch.Generator().manual_seed(0)
        ue = FullEmbedding(n_users, R, 100.0, FullEmbedding.Params(), g)
        cbs = [GradientAveraging(), MethodSteps()]
        if method == "full":
            ie = FullEmbedding(n_items, R, 100.0, FullEmbedding.Params(), g)
        else:
            params = CELParams(split=False) if method == "cel" else CELParams()
            ie = CELEmbedding(n_items, R, CEL_CR_A, params, g)
            cbs.append(ClusterSchedule("item"))
        cfg = TrainConfig(optimizer="gd", lr=LR, steps=10**9, eval_every=10**9, log_every=10**9)
        if new_api:
            t = trainer_mod.full_batch_trainer(NMF(), ue, ie, pairs, y, cfg, reg=REG, callbacks=cbs,
                                               log=lambda m: None)
            batch = next(t.feed.batches())      # fit() builds the full batch once per run, too
            step = lambda: t.train_step(batch)  # noqa: E731
        else:
            t = trainer_mod.FullBatchTrainer(NMF(), ue, ie, pairs, y, cfg, reg=REG, callbacks=cbs,
                                             log=lambda m: None)
            step = t.train_step
        t.constrain()                           # as fit() starts
        t.trigger("on_fit_start")
        if method == "cel_sched":               # the step as fit() runs it, with the schedule
            def step(inner=step):
                out = inner()
                t.trigger("on_step_end")
                return out
        return t, step

    runs = {name: build(name) for name in MODELS_A}
    times = {name: [] for name in runs}
    losses = {name: [] for name in runs}

    def one(name: str, timed: bool) -> None:
        t, step = runs[name]
        t.step += 1
        t0 = time.perf_counter()
        loss, _ = step()
        dt = time.perf_counter() - t0
        losses[name].append(loss.item())
        if timed:
            times[name].append(dt)

    for _ in range(args.warmup):
        for name in runs:
            one(name, False)
    gc.collect()
    gc.disable()
    try:
        names = list(runs)
        for k in range(args.steps):
            for j in range(len(names)):                 # rotate the order every step
                one(names[(k + j) % len(names)], True)
    finally:
        gc.enable()
    print(json.dumps({"cel_file": str(got), "api": "Trainer" if new_api else "FullBatchTrainer",
                      "threads": torch.get_num_threads(), "times": times,
                      "first_loss": {k: v[0] for k, v in losses.items()},
                      "last_loss": {k: v[-1] for k, v in losses.items()}}))


# ============================================================================ (a) parent
def prepare_sources(tmp: Path) -> dict[str, Path]:
    before = tmp / "before"
    before.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE_COMMIT, "src"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    after = tmp / "after"
    shutil.copytree(REPO / "src", after / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return {"before": before / "src", "after": after / "src"}


def write_data(tmp: Path) -> Path | None:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_cel import load_ml100k

    inter = load_ml100k()
    if inter is None:
        return None
    u, i = inter["user"].to_numpy(), inter["item"].to_numpy()
    path = tmp / "ml100k_80.npz"
    np.savez(path, user=u, item=i, rating=inter["rating"].to_numpy(),
             n_users=int(u.max() + 1), n_items=int(i.max() + 1))
    return path


def run_child(src: Path, data: Path, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--expect-src", str(src),
           "--data", str(data), "--threads", str(args.threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(src.parent))
    if out.returncode != 0:
        raise SystemExit(f"child ({src}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_steps(args, tmp: Path) -> dict | None:
    data = write_data(tmp)
    if data is None:
        print("(a) skipped: ML-100k not found in the mirror")
        return None
    srcs = prepare_sources(tmp)
    res = {v: [] for v in srcs}
    for rnd in range(args.rounds):
        order = ("before", "after") if rnd % 2 == 0 else ("after", "before")
        for v in order:
            res[v].append(run_child(srcs[v], data, args))
        print(f"[bench] (a) round {rnd + 1}/{args.rounds}: " + ", ".join(
            f"{v} " + " ".join(f"{n} {1e3 * statistics.median(res[v][-1]['times'][n]):.2f} ms" for n in MODELS_A)
            for v in order), flush=True)
    out = {"before_commit": BEFORE_COMMIT, "cel_file": {v: res[v][0]["cel_file"] for v in res},
           "api": {v: res[v][0]["api"] for v in res}, "steps_per_child": args.steps, "warmup": args.warmup,
           "rounds": args.rounds, "models": {}}
    for name in MODELS_A:
        # the step alone: medians; the step with the schedule (a split every 10th step): means (amortised)
        stat = statistics.fmean if name == "cel_sched" else statistics.median
        med = {v: stat([t for c in res[v] for t in c["times"][name]]) for v in res}
        per_round = [stat(a["times"][name]) / stat(b["times"][name]) for a, b in zip(res["after"], res["before"])]
        out["models"][name] = {"statistic": stat.__name__,
            "before_ms": 1e3 * med["before"], "after_ms": 1e3 * med["after"],
            "ratio": med["after"] / med["before"], "per_round_ratios": per_round,
            "first_loss": {v: res[v][0]["first_loss"][name] for v in res},
            "last_loss": {v: res[v][0]["last_loss"][name] for v in res},
            "step_ms": {v: [[1e3 * t for t in c["times"][name]] for c in res[v]] for v in res}}
    return out


def print_steps(a: dict, threads: int) -> None:
    print(f"\n(a) full-batch step, before ({a['before_commit']}, {a['api']['before']}) vs after (working tree, "
          f"{a['api']['after']}); ML-100k 80%, R={R}, GD lr {LR:g}, {threads} thread(s); "
          f"{a['rounds']} subprocess rounds x {a['steps_per_child']} timed steps per model")
    print(f"    before: {a['cel_file']['before']}\n    after:  {a['cel_file']['after']}")
    print(f"{'model':<26} | {'before ms':>9} | {'after ms':>8} | {'after/before':>12} | "
          f"{'per-round ratios (min / median / max)':>37} | goal <= {STEP_GOAL}")
    print("-" * 122)
    for name, label in (("full", "NMF full"), ("cel", f"NMF CEL {CEL_CR_A:g}% no split"),
                        ("cel_sched", f"(info) CEL {CEL_CR_A:g}% +sched, mean")):
        m = a["models"][name]
        pr = m["per_round_ratios"]
        fl, ll = m["first_loss"], m["last_loss"]
        rel = max(abs(x["after"] - x["before"]) / max(abs(x["before"]), 1e-30) for x in (fl, ll))
        same = ("same losses" if rel == 0 else
                f"losses differ by {rel:.1e} rel.: first {fl['before']:.8g} / {fl['after']:.8g}, "
                f"last {ll['before']:.8g} / {ll['after']:.8g}")
        print(f"{label:<26} | {m['before_ms']:>9.3f} | {m['after_ms']:>8.3f} | {m['ratio']:>12.3f} | "
              f"{min(pr):>11.3f} / {statistics.median(pr):>6.3f} / {max(pr):>6.3f}         | "
              f"{'' if name == 'cel_sched' else 'goal met' if m['ratio'] <= STEP_GOAL else 'NOT met'} ({same})")
    print(f"    ms = median step (mean for the (info) row: amortised); (info) row: default CELParams (M_0 = 1, split every t2 = 10, reassign every t1 = 40), timed region"
          f" = train_step + on_step_end, steps 1..{a['warmup'] + a['steps_per_child']} of each subprocess (same"
          f" schedule events in both versions); no goal")


# ============================================================================ (b)
class FitTimer:
    """Wraps Trainer.fit / run_eval / trigger (class attributes) to time a run's pieces."""

    def __init__(self):
        from cel.train.trainer import Trainer

        self.cls = Trainer
        self.reset()

    def reset(self) -> None:
        self.t = {"fit": 0.0, "eval": 0.0, "on_step_end": 0.0, "on_after_backward": 0.0}

    def __enter__(self):
        cls = self.cls
        self.orig = {k: getattr(cls, k) for k in ("fit", "run_eval", "trigger")}
        timer = self

        def timed(method, key_of):
            """``method`` adding its wall time to ``timer.t[key_of(args)]`` when that key is timed."""
            def wrapper(tr, *a):
                t0 = time.perf_counter()
                try:
                    return method(tr, *a)
                finally:
                    key = key_of(a)
                    if key in timer.t:
                        timer.t[key] += time.perf_counter() - t0
            return wrapper

        cls.fit = timed(self.orig["fit"], lambda a: "fit")
        cls.run_eval = timed(self.orig["run_eval"], lambda a: "eval")
        cls.trigger = timed(self.orig["trigger"], lambda a: a[0])      # a = (event, *args)
        return self

    def __exit__(self, *exc):
        for k, v in self.orig.items():
            setattr(self.cls, k, v)


def run_config(tmp: Path, threads: int, steps: int) -> dict:
    return {
        "results_dir": str(tmp / "results"), "archives_dir": str(tmp / "archives"),
        "data": {"mirror": str(mirror_dir())},
        "datasets": {"ml-100k": {"kind": "ml-100k"}}, "variants": {"original": {"kind": "original"}},
        "split": {"folds": 5, "seed": 0},
        "models": {"nmf": {"rank": R, "reg": REG, "nonneg": "abs"}},
        "methods": {"full": {}, "cel": {}},
        "train": {"optimizer": "gd", "lr": LR, "steps": steps, "eval_every": 25, "log_every": 250, "seed": 0,
                  "val_fraction": 0.1, "patience": 0, "threads": threads},
        "grid": [{"datasets": ["ml-100k"], "methods": ["full"], "compressions": [100], "folds": [0]},
                 {"datasets": ["ml-100k"], "methods": ["cel"], "compressions": [5, 1, 0.5], "folds": [0]}],
        "tables": [], "mlflow": {"experiment": "bench-engine"},
    }


def bench_runs(args, tmp: Path) -> dict | None:
    import yaml

    if not (mirror_dir() / "ml-100k.zip").exists():
        print(f"(b) skipped: {mirror_dir() / 'ml-100k.zip'} not found")
        return None
    from cel.config import load_config
    from cel.runkey import RunKey
    from cel.train.run import execute_run

    path = tmp / "engine_bench.yaml"
    path.write_text(yaml.safe_dump(run_config(tmp, args.threads, args.run_steps), sort_keys=False))
    cfg = load_config(path)
    key = lambda method, cr: RunKey("regression", "ml-100k", "original", "nmf", method, cr, 0, 0)  # noqa: E731
    logs: list[str] = []
    # untimed warm-up: prepares the data (prepare, variant, split) in the temp results dir, imports
    execute_run(load_config(path, overrides={"train": {"steps": 50}}), key("cel", "5"), tmp / "warmup",
                threads=args.threads, log=logs.append)
    timer = FitTimer()
    runs: list[dict] = []

    def one(method: str, cr: str, rnd: int) -> dict:
        k = key(method, cr)
        timer.reset()
        gc.collect()
        t0 = time.perf_counter()
        with timer:
            rec = execute_run(cfg, k, tmp / "runs" / f"{method}_cr{cr}_r{rnd}", threads=args.threads, log=logs.append)
        wall = time.perf_counter() - t0
        steps = rec["metrics"]["steps"]
        item = rec["clusters"].get("item", {})
        row = {"method": method, "compression": cr, "round": rnd, "steps": steps, "wall_s": wall,
               "record_wall_s": rec["timing"]["wall_seconds"], "fit_s": timer.t["fit"],
               "train_step_s": rec["timing"]["step_seconds"] * steps, "on_step_end_s": timer.t["on_step_end"],
               "on_after_backward_s": timer.t["on_after_backward"], "eval_s": timer.t["eval"],
               "test_mse": rec["metrics"].get("test_mse"), "selected_step": rec["metrics"]["selected_step"],
               "final_clusters": item.get("final_clusters"), "splits": item.get("splits"),
               "reassignments": len(item.get("reassign_moves", []))}
        runs.append(row)
        return row

    pairs = []
    for rnd in range(args.run_rounds):
        for cr in RUN_COMPRESSIONS:
            order = ("full", "cel") if rnd % 2 == 0 else ("cel", "full")
            got = {m: one(m, "100" if m == "full" else cr, rnd) for m in order}
            f, c = got["full"], got["cel"]
            pairs.append({"compression": cr, "round": rnd,
                          "fit_ratio": (c["fit_s"] / c["steps"]) / (f["fit_s"] / f["steps"]),
                          "train_step_ratio": (c["train_step_s"] / c["steps"]) / (f["train_step_s"] / f["steps"]),
                          "wall_ratio": (c["wall_s"] / c["steps"]) / (f["wall_s"] / f["steps"])})
            print(f"[bench] (b) round {rnd + 1}/{args.run_rounds} cr{cr}: full fit {f['fit_s']:.2f}s, "
                  f"cel fit {c['fit_s']:.2f}s ({c['splits']} splits, {c['reassignments']} reassignments, "
                  f"{c['final_clusters']} clusters) -> {pairs[-1]['fit_ratio']:.3f}", flush=True)
    summary = {}
    for cr in RUN_COMPRESSIONS:
        ps = [p for p in pairs if p["compression"] == cr]
        cel_rows = [r for r in runs if r["method"] == "cel" and r["compression"] == cr]
        summary[cr] = {k: statistics.median(p[k] for p in ps) for k in ("fit_ratio", "train_step_ratio", "wall_ratio")}
        summary[cr]["fit_ratios"] = [p["fit_ratio"] for p in ps]
        for part in ("train_step_s", "on_after_backward_s", "on_step_end_s", "eval_s", "fit_s"):
            summary[cr][f"cel_{part}_per_step_ms"] = statistics.median(1e3 * r[part] / r["steps"] for r in cel_rows)
        summary[cr].update({k: cel_rows[0][k] for k in ("final_clusters", "splits", "reassignments", "test_mse")})
    full_rows = [r for r in runs if r["method"] == "full"]
    summary["full"] = {f"{part}_per_step_ms": statistics.median(1e3 * r[part] / r["steps"] for r in full_rows)
                       for part in ("train_step_s", "on_after_backward_s", "on_step_end_s", "eval_s", "fit_s")}
    summary["full"]["test_mse"] = full_rows[0]["test_mse"]
    return {"steps": args.run_steps, "rounds": args.run_rounds, "runs": runs, "pairs": pairs, "summary": summary}


def print_runs(b: dict, threads: int) -> None:
    s = b["summary"]
    print(f"\n(b) whole runs through execute_run: ML-100k fold 0 seed 0, {b['steps']} steps, eval every 25, "
          f"val 10%, {threads} thread(s), {b['rounds']} round(s); CEL default (t1=40 reassign, t2=10 split, M_0=1)")
    print("    measure: Trainer.fit wall per step (steps + callbacks + validation + snapshots), CEL / the full "
          "run next to it; median over rounds")
    print(f"{'run':<10} | {'fit ms/step':>11} | {'train_step':>10} | {'(after_bwd)':>11} | {'on_step_end':>11} | {'eval':>6} | "
          f"{'K':>4} | {'splits':>6} | {'reassign':>8} | {'test_mse':>8} | {'fit ratio':>9} | "
          f"{'step ratio':>10} | {'wall ratio':>10} | goal <= {RUN_GOAL}")
    print("-" * 164)
    f = s["full"]
    print(f"{'full cr100':<10} | {f['fit_s_per_step_ms']:>11.3f} | {f['train_step_s_per_step_ms']:>10.3f} | "
          f"{f['on_after_backward_s_per_step_ms']:>11.3f} | "
          f"{f['on_step_end_s_per_step_ms']:>11.3f} | {f['eval_s_per_step_ms']:>6.3f} | {'':>4} | {'':>6} | "
          f"{'':>8} | {f['test_mse']:>8.4f} | {'1':>9} | {'1':>10} | {'1':>10} |")
    for cr in RUN_COMPRESSIONS:
        c = s[cr]
        print(f"{'cel cr' + cr:<10} | {c['cel_fit_s_per_step_ms']:>11.3f} | {c['cel_train_step_s_per_step_ms']:>10.3f} | "
              f"{c['cel_on_after_backward_s_per_step_ms']:>11.3f} | "
              f"{c['cel_on_step_end_s_per_step_ms']:>11.3f} | {c['cel_eval_s_per_step_ms']:>6.3f} | "
              f"{c['final_clusters']:>4} | {c['splits']:>6} | {c['reassignments']:>8} | {c['test_mse']:>8.4f} | "
              f"{c['fit_ratio']:>9.3f} | {c['train_step_ratio']:>10.3f} | {c['wall_ratio']:>10.3f} | "
              f"{'goal met' if c['fit_ratio'] <= RUN_GOAL else 'NOT met'} (per round: "
              + ", ".join(f"{x:.3f}" for x in c["fit_ratios"]) + ")")
    print("    columns in ms per step: fit = train_step + on_step_end + eval + the rest of the loop; (after_bwd) ="
          " on_after_backward callbacks, part of train_step (gradient averaging; CEL: Eq. 5's entity gradients"
          " on every split-due step); step ratio ="
          " record timing.step_seconds ratio (train_step only); wall ratio = whole execute_run (load, build,"
          " fit, test, write)")


def cpu_busy() -> float:
    """CPUs kept busy by other work over a 1 s sample of /proc/stat (0 when unknown)."""
    def snap():
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        (t0, i0), _ = snap(), time.sleep(1.0)
        t1, i1 = snap()
        return (os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0))
    except OSError:
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8, help="(a) subprocess rounds (each: before and after)")
    ap.add_argument("--steps", type=int, default=150, help="(a) timed steps per model per subprocess")
    ap.add_argument("--warmup", type=int, default=10, help="(a) untimed steps per model per subprocess")
    ap.add_argument("--run-rounds", type=int, default=3, help="(b) rounds of (full, CEL) run pairs")
    ap.add_argument("--run-steps", type=int, default=1000, help="(b) training steps per run")
    ap.add_argument("--only", choices=("a", "b"), help="run one part only")
    ap.add_argument("--json", help="write everything (incl. every step time) to this file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--expect-src", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    busy = cpu_busy()
    print(f"[bench] before start: {busy:.2f} of {os.cpu_count()} CPUs busy with other work (1 s sample)", flush=True)
    result: dict = {"threads": args.threads, "busy_cpus_before": busy, "python": sys.executable}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as d:
        tmp = Path(d)
        if args.only in (None, "a"):
            result["steps"] = bench_steps(args, tmp)
        if args.only in (None, "b"):
            import torch
            torch.set_num_threads(args.threads)
            result["runs"] = bench_runs(args, tmp)
    if result.get("steps"):
        print_steps(result["steps"], args.threads)
    if result.get("runs"):
        print_runs(result["runs"], args.threads)
    print(f"\n[bench] total {time.perf_counter() - t_start:.0f}s; load average at the end: {os.getloadavg()}")
    if busy > 0.25:
        print(f"[bench] NOTE: other work kept {busy:.2f} of {os.cpu_count()} CPUs busy before this run: the "
              "ratios come from interleaved measurements, but contention widens their spread")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
