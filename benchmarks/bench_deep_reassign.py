"""CEL-Lite's reassignment inside the deep models (issue 12, "Benchmark"; READINGS #12): the time
spent reassigning over the time of training, per epoch, for DIN and DeepFM (goal <= 0.25), and
for the business models SAML and DUPN (issue 16; ``--models``), with the exact Eq. 4 cost printed
for reference.

Setting: the conversion protocol of Table 3: R = 8, b = 256, both users and items CEL-Lite at
``--compression`` %, replay feed (n = 20 buffered interactions per entity), m = 50 candidates,
t1 = 1, Adam, BCE on rating >= 4 labels; data: synthetic with ML-100k's shape (943 users, 1682
items, ~100k interactions, planted clusters), in time order. SAML's scenario is user id mod 4 + 1
(4 scenarios, as ML-100k's age bands); DUPN's row features (behaviour type, time gap, rating) come
from the data as in a run.

Measured over ``--steps`` training steps (after ``--warmup``), extrapolated to an epoch of
ceil(D / b) steps (the per-step costs are what an epoch repeats):

* ``train``    seconds per epoch of everything but the schedule (batch building with DIN's history
  and the replay rows, forward, backward, update);
* ``reassign`` seconds per epoch in ``LiteSchedule.reassign`` (both sides), the CEL-Lite
  restriction: each entity of the batch scored on its <= n buffered interactions under its
  current cluster plus m sampled live clusters, the candidate at the target position only;
* ``split``    seconds per epoch in the splits (Strategies 1/2, Eq. 5 gradients on buffers).

Two ratios, both over the train seconds of one epoch measured in the same run:

* ``one reassignment`` (the issue's "time of one CEL reassignment divided by the time of one
  epoch", goal <= 0.25; READINGS #12: under the CEL-Lite restriction): one reassignment of every
  user and every item once (``LiteSchedule.reassign`` on all ids of each side, both sides
  summed), timed after the measured steps;
* ``schedule`` reassign / train: everything the schedule spends reassigning in an epoch at
  t1 = 1 (each batch's entities after every step: an item is reassigned once per batch it is in,
  dozens of times an epoch here), with (reassign + split) / train beside it. This is the schedule's
  overhead on training, a stricter number than one reassignment. ``per batch`` is the reassignment
  of one batch's entities (both sides), reassign seconds / steps.

``--compare 1`` measures each model a second time with its ``candidate_scores`` fast path hidden
(the generic path: the model's forward on every distinct (candidate, other) pair, as before the
model had one) and prints the speed-up of the reassignment.

Exact cost for reference: Eq. 4 over every interaction and every one of the K clusters reruns the
model (attention, MLP) K times per interaction, so one exact reassignment of one side costs about
K forward passes over the D training rows: measured as K x (forward seconds over all D rows, with
history and features), divided by the train seconds of an epoch.

    .venv/bin/python benchmarks/bench_deep_reassign.py [--threads 2] [--steps 60] [--models din,deepfm,saml,dupn]
        [--compression 5] [--compare 1] [--json benchmarks/out/deep_reassign.json]
"""
from __future__ import annotations

import math
import os
import time

import torch

from cel.config import TrainConfig
from cel.data.prepare import remap
from cel.data.synthetic import SyntheticSpec, generate
from cel.embeddings.cel_lite import CELLiteEmbedding
from cel.models import MODELS
from cel.models.saml import N_SCENARIOS
from cel.train.feeds import BatchContext, FeedConfig, InteractionTable, make_batch, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.lite_schedule import LiteSchedule
from cel.train.method_steps import MethodSteps
from cel.train.replay_feed import register
from cel.train.run import SIDE_FEATURES
from cel.train.tasks import Conversion
from cel.train.trainer import Trainer, predict_all

from _timing import fit_more, parse_args, save_json, set_threads

SPEC = SyntheticSpec(users=943, items=1682, density=0.063, rank=8, clusters=20, seed=0)
R, B, N_BUF, M_CAND = 8, 256, 20, 50


def build(name: str, data, compression: float, seed: int = 0, fast: bool = True) -> Trainer:
    """The run's trainer; ``fast=False`` hides the model's ``candidate_scores`` (the generic path)."""
    inter, items, N, M = data
    task = Conversion(threshold=4.0)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    table = InteractionTable.from_frame(inter, N, M, task.labels)
    model = MODELS[name](nonneg="none")
    if not fast:
        model.candidate_scores = None
    users = {"scenario": (torch.arange(N)[:, None] % N_SCENARIOS + 1, torch.ones(N, 1, dtype=torch.bool))}
    ctx = BatchContext(table, model.history_len, {n: SIDE_FEATURES[n](items, M) for n in model.side_features},
                       {n: users[n] for n in getattr(model, "user_features", ())}, tuple(getattr(model, "row_features", ())))
    params = CELLiteEmbedding.Params(m=M_CAND, t1=1)
    ue = CELLiteEmbedding(N, R, compression, params, g)
    ie = CELLiteEmbedding(M, R, compression, params, g)
    cfg = TrainConfig(optimizer="adam", lr=3e-3, steps=0, eval_every=10**9, log_every=10**9, seed=seed)
    feed = make_feed(FeedConfig("replay", batch_size=B, buffer=N_BUF, passes=0, loss="mean"), table, seed, ctx)
    return Trainer(task, feed, model, ue, ie, cfg, reg=0.0,
                   callbacks=[GradientAveraging(), MethodSteps(), LiteSchedule("user", seed), LiteSchedule("item", seed)],
                   log=lambda m: None)


def schedule_seconds(tr: Trainer) -> dict[str, float]:
    out = {"reassign": 0.0, "split": 0.0}
    for cb in tr.callbacks:
        if isinstance(cb, LiteSchedule):
            for k in out:
                out[k] += cb.seconds[k]
    return out


def measure(tr: Trainer, steps: int) -> dict[str, float]:
    before = schedule_seconds(tr)
    wall, _ = fit_more(tr, steps)
    after = schedule_seconds(tr)
    reassign, split = after["reassign"] - before["reassign"], after["split"] - before["split"]
    return {"wall": wall, "reassign": reassign, "split": split, "train": wall - reassign - split}


def forward_all_seconds(tr: Trainer) -> float:
    """Seconds of one forward pass over every training row (history and features attached)."""
    table = tr.feed.train
    batch = make_batch(table, None, tr.feed.context)
    t0 = time.perf_counter()
    with torch.no_grad():
        predict_all(tr.model, tr.user_emb, tr.item_emb, batch)
    return time.perf_counter() - t0


def met(ratio: float) -> str:
    return "met" if ratio <= 0.25 else "NOT met"


def one_reassignment_seconds(tr: Trainer) -> dict[str, float]:
    """Seconds of one CEL-Lite reassignment of every entity, per side: ``LiteSchedule.reassign`` on
    all ids (each scored on its <= n buffered interactions under its cluster and m candidates).
    It moves entities: call it after the measured steps."""
    out = {}
    for cb in tr.callbacks:
        if isinstance(cb, LiteSchedule):
            ids = torch.arange(cb.emb(tr).num_entities)
            t0 = time.perf_counter()
            cb.reassign(tr, ids)
            out[cb.side] = time.perf_counter() - t0
    return out


def main() -> None:
    args = parse_args(__doc__, steps=60, warmup=40, extra=(("--compression", float, 5.0), ("--models", str, "din,deepfm"),
                                                          ("--compare", int, 0)))
    set_threads(args.threads)
    register()
    inter, items = remap(*generate(SPEC))
    data = (inter, items, int(inter["user"].max()) + 1, int(inter["item"].max()) + 1)
    D = len(inter)
    steps_per_epoch = math.ceil(D / B)
    print(f"synthetic data: {D:,} interactions, {data[2]} users, {data[3]} items; R={R} b={B} n={N_BUF} "
          f"m={M_CAND} t1=1, CEL-Lite {args.compression:g}% on both sides; epoch = {steps_per_epoch} steps")
    rows = []
    for name, fast in ((n, f) for n in args.models.split(",") for f in ((True, False) if args.compare else (True,))):
        tr = build(name, data, args.compression, fast=fast)
        measure(tr, args.warmup)                        # clusters split from M_0 = 1 towards the cap first
        m = measure(tr, args.steps)
        scale = steps_per_epoch / args.steps
        epoch = {k: v * scale for k, v in m.items()}
        K = {side: cb.emb(tr).n_clusters for cb in tr.callbacks if isinstance(cb, LiteSchedule) for side in [cb.side]}
        one = one_reassignment_seconds(tr)
        fwd = forward_all_seconds(tr)
        row = {"model": name, "fast_path": fast, "threads": args.threads, "steps": args.steps, "steps_per_epoch": steps_per_epoch,
               "batch_reassign_s": m["reassign"] / args.steps,
               "epoch_train_s": epoch["train"], "epoch_reassign_s": epoch["reassign"], "epoch_split_s": epoch["split"],
               "reassign_over_train": epoch["reassign"] / epoch["train"],
               "schedule_over_train": (epoch["reassign"] + epoch["split"]) / epoch["train"],
               "interactions_per_s_with_schedule": args.steps * B / m["wall"],
               "one_reassign_s": one, "one_reassign_over_epoch": sum(one.values()) / epoch["train"],
               "clusters": K, "forward_all_rows_s": fwd,
               "exact_item_reassign_over_train": K["item"] * fwd / epoch["train"],
               "exact_user_reassign_over_train": K["user"] * fwd / epoch["train"]}
        rows.append(row)
        label = name if fast else f"{name}*"
        print(f"{label:>7}: one CEL reassignment (CEL-Lite restriction, every user and item once: "
              f"{one['user']:.3f} + {one['item']:.3f} s) / one epoch of training = {row['one_reassign_over_epoch']:.3f} "
              f"(goal <= 0.25: {met(row['one_reassign_over_epoch'])})")
        print(f"{'':>7}  schedule at t1=1: epoch train {row['epoch_train_s']:7.1f} s, reassign {row['epoch_reassign_s']:6.1f} s "
              f"({1e3 * row['batch_reassign_s']:.1f} ms per batch), "
              f"split {row['epoch_split_s']:6.1f} s -> reassign/train {row['reassign_over_train']:.3f} "
              f"(<= 0.25: {met(row['reassign_over_train'])}), "
              f"(reassign+split)/train {row['schedule_over_train']:.3f}; {row['interactions_per_s_with_schedule']:,.0f} "
              f"new interactions/s with the schedule; clusters {K}; exact Eq. 4 for reference: "
              f"items {row['exact_item_reassign_over_train']:.1f}, users {row['exact_user_reassign_over_train']:.1f} "
              f"epochs of training (K x a forward pass over {D:,} rows = {fwd:.2f} s)")
    if args.compare:
        print("* = generic path (the model's candidate_scores hidden). Speed-up of the fast path:")
        for fast_row, slow_row in zip(rows[::2], rows[1::2]):
            print(f"{fast_row['model']:>7}: one reassignment of every entity x{sum(slow_row['one_reassign_s'].values()) / sum(fast_row['one_reassign_s'].values()):.1f}, "
                  f"per batch x{slow_row['batch_reassign_s'] / fast_row['batch_reassign_s']:.1f} "
                  f"({1e3 * slow_row['batch_reassign_s']:.1f} -> {1e3 * fast_row['batch_reassign_s']:.1f} ms)")
    print(f"load average {os.getloadavg()[0]:.2f} after")
    if args.json:
        save_json(args.json, {"load_average": os.getloadavg(), "results": rows})


if __name__ == "__main__":
    main()
