"""Training throughput of the deep interaction models (issue 12, "Benchmark"): DIN and DeepFM
(NMF beside them for reference) through the real :class:`~cel.train.trainer.Trainer` on the
``minibatch`` feed, in interactions per second, with 2 intra-op threads by default.

Settings: the two of the paper, R = 8 with b = 256 (Table 3, the conversion protocol) and R = 64
with b = 2000 (Table 2, rating prediction). Data: ``generate(SyntheticSpec(users=6040,
items=3706, density=0.02, rank=8, clusters=20))`` (ML-1m's shape, ~448k interactions, planted
clusters as the items' single "genre"), ids through ``cel.data.prepare.remap``. Every trainer:
full user and item embeddings (the model's own cost, no compression), the run driver's callbacks
(GradientAveraging, MethodSteps), Adam lr 1e-3, regression loss, the model's own batch context
(DIN: the last H = 20 earlier items of the user; DeepFM: the genre field).

Timed: ``Trainer.fit`` over ``--steps`` steps after ``--warmup`` steps (lazy parameters
materialised, allocator warm), per model and setting, in ``--rounds`` rounds with the models
alternating; the median round is reported. Two rates:

* ``fit``  — interactions / wall second of ``fit``: batch construction (the feed's shuffling,
  DIN's history lookup in the BatchContext) + the training step + callbacks;
* ``step`` — interactions / second of ``train_step`` alone (``History.step_seconds``).

The load average is printed before and after: on a machine shared with other processes, two
intra-op threads contend for the cores and the rates can drop by 10-100x (run ``--threads 1``
beside it to see). Not a test; nothing is asserted.

    .venv/bin/python benchmarks/bench_deep.py [--threads 2] [--steps 30] [--warmup 5] [--rounds 3] \
        [--json benchmarks/out/deep.json]
"""
from __future__ import annotations

import os
import statistics
import time

import torch

from cel.config import TrainConfig
from cel.data.prepare import remap
from cel.data.synthetic import SyntheticSpec, generate
from cel.embeddings.full import FullEmbedding
from cel.models import MODELS
from cel.train.feeds import BatchContext, FeedConfig, InteractionTable, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.method_steps import MethodSteps
from cel.train.run import SIDE_FEATURES
from cel.train.tasks import Regression
from cel.train.trainer import Trainer

from _timing import fit_more, parse_args, save_json, set_threads

SETTINGS = ((8, 256), (64, 2000))          # (R, b)
MODEL_NAMES = ("din", "deepfm", "nmf")
SPEC = SyntheticSpec(users=6040, items=3706, density=0.02, rank=8, clusters=20, seed=0)


def load_data():
    inter, items = remap(*generate(SPEC))
    return inter, items, int(inter["user"].max()) + 1, int(inter["item"].max()) + 1


def build(name: str, data, R: int, b: int, seed: int = 0) -> Trainer:
    inter, items, N, M = data
    task = Regression()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    table = InteractionTable.from_frame(inter, N, M, task.labels)
    model = MODELS[name](nonneg="none")
    ctx = BatchContext(table, model.history_len, {n: SIDE_FEATURES[n](items, M) for n in model.side_features})
    ue = FullEmbedding(N, R, 100.0, FullEmbedding.Params(), g)
    ie = FullEmbedding(M, R, 100.0, FullEmbedding.Params(), g)
    cfg = TrainConfig(optimizer="adam", lr=1e-3, steps=0, eval_every=10**9, log_every=10**9, seed=seed)
    return Trainer(task, make_feed(FeedConfig("minibatch", batch_size=b), table, seed, ctx), model, ue, ie, cfg,
                   reg=0.01, callbacks=[GradientAveraging(), MethodSteps()], log=lambda m: None)


def run_steps(tr: Trainer, steps: int) -> tuple[float, float]:
    """(wall seconds of fit, seconds in train_step) for ``steps`` more steps."""
    wall, h = fit_more(tr, steps)
    return wall, h.step_seconds * steps


def main() -> None:
    args = parse_args(__doc__, steps=30, warmup=5, extra=(("--rounds", int, 3),))
    set_threads(args.threads)
    t0 = time.perf_counter()
    data = load_data()
    print(f"synthetic data: {len(data[0]):,} interactions, {data[2]} users, {data[3]} items "
          f"({time.perf_counter() - t0:.1f} s)")
    results = []
    for R, b in SETTINGS:
        trainers = {name: build(name, data, R, b) for name in MODEL_NAMES}
        for tr in trainers.values():
            run_steps(tr, args.warmup)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in MODEL_NAMES}
        for r in range(args.rounds):
            order = MODEL_NAMES if r % 2 == 0 else MODEL_NAMES[::-1]
            for name in order:
                times[name].append(run_steps(trainers[name], args.steps))
        for name in MODEL_NAMES:
            fit = statistics.median(t for t, _ in times[name])
            step = statistics.median(s for _, s in times[name])
            n = args.steps * b
            row = {"model": name, "R": R, "b": b, "threads": args.threads, "steps": args.steps,
                   "fit_interactions_per_s": n / fit, "step_interactions_per_s": n / step,
                   "fit_ms_per_step": 1000 * fit / args.steps, "step_ms_per_step": 1000 * step / args.steps,
                   "history_len": trainers[name].model.history_len,
                   "model_params": sum(p.numel() for p in trainers[name].model.parameters())}
            results.append(row)
            print(f"{name:>7}  R={R:<3} b={b:<5} fit {row['fit_interactions_per_s']:>10,.0f} interactions/s "
                  f"({row['fit_ms_per_step']:7.1f} ms/step)   train_step {row['step_interactions_per_s']:>10,.0f} "
                  f"interactions/s ({row['step_ms_per_step']:7.1f} ms/step)   model params {row['model_params']:,}")
    print(f"load average {os.getloadavg()[0]:.2f} after")
    if args.json:
        save_json(args.json, {"threads": args.threads, "load_average": os.getloadavg(), "results": results})


if __name__ == "__main__":
    main()
