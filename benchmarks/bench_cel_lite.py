"""CEL-Lite complexity benchmark (issue 11; Section 3.4, Theorem 2: O(DR) time).

Prints, in one run, on synthetic power-law streams (``cel.data.stream``; vocabulary scaled with
D: D/10 users and D/50 items):

  * time per interaction at D = 1M and D = 10M (goal: ratio within 1 ± 0.25), caps 1,000, with
    the vocabulary scaled with D and, beside it, with a fixed vocabulary (D/50 users and D/200
    items of the smaller stream) whose buffers are full at both sizes; each ratio is also given
    per row touched (SGD rows with replay + scored (entity, candidate, buffered row) triples +
    rows read by splits), which separates the cost of a row from how many rows an interaction
    touches (bounded by n and m, but growing while buffers fill and batches overlap less);
  * time per interaction with the cap M_q at 100 and at 10,000 on the 1M stream (same goal);
  * throughput in interactions per second (goal >= 100,000 at R = 64, b = 2000, 2 threads);
  * peak RSS of the 10M run (its own process) and bytes per entity (cluster embeddings,
    assignments, replay buffers, optimiser state, cluster bookkeeping).

Every run is the real loop: ``Trainer`` on the ``replay`` feed (each batch once, plus the buffered
interactions of the users and items it touches), NMF, CEL-Lite on users and items (no
vocabulary: both sides admit ids on arrival; a full user table would make the trainer's dense
per-step work O(N R)), ``GradientAveraging`` and one ``LiteSchedule`` per side; SGD, lr 0.05
(A.1), d = 100, n = 20, m = 10, t1 = 1. Progressive scoring is switched off (the trainer scores
everything seen so far every 10 steps, O(D) each time: not CEL-Lite's cost). Each configuration
runs in its own process (clean peak RSS); the stream is generated before the clock starts.

    .venv/bin/python benchmarks/bench_cel_lite.py            # D = 1M and 10M (~11 min with --threads 1)
    .venv/bin/python benchmarks/bench_cel_lite.py --small    # D = 100k and 1M (~2 min)
    .venv/bin/python benchmarks/bench_cel_lite.py --json benchmarks/out/cel_lite.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

R, B, D_THRESHOLD, LR = 64, 2000, 100, 0.05


def stream_table(rows: int, users: int = 0, items: int = 0, seed: int = 0):
    """(InteractionTable, spec) of a power-law stream; by default D/10 users and D/50 items."""
    import numpy as np
    import torch

    from cel.data.stream import StreamSpec, iter_chunks
    from cel.train.feeds import InteractionTable

    spec = StreamSpec(rows=rows, users=users or max(100, rows // 10), items=items or max(50, rows // 50), groups=50,
                      rank=8, user_exponent=0.9, item_exponent=0.9, chunk=1_000_000, seed=seed)
    cols = {c: [] for c in ("user", "item", "rating", "timestamp")}
    for chunk in iter_chunks(spec):
        for c in cols:
            cols[c].append(chunk[c].to_numpy())
    col = {c: torch.from_numpy(np.concatenate(v)) for c, v in cols.items()}
    return InteractionTable(col["user"].long(), col["item"].long(), col["rating"].float(), col["timestamp"].long(),
                            spec.users, spec.items), spec


def optimizer_bytes(trainer) -> int:
    return sum(v.numel() * v.element_size() for opt in trainer.optimizers() for st in opt.state.values()
               for v in st.values() if hasattr(v, "numel"))



def lite_setup(table, cap: int):
    """CEL-Lite on both sides (no vocabulary: ids admitted on arrival), the replay feed (b = B,
    n = 20, progressive scoring off) and one LiteSchedule per side: what both stream benchmarks time."""
    import torch

    from cel.embeddings.cel_lite import CELLiteEmbedding, CELLiteParams
    from cel.train.feeds import FeedConfig
    from cel.train.lite_schedule import LiteSchedule
    from cel.train.replay_feed import ReplayStreamFeed

    g = torch.Generator().manual_seed(0)
    params = CELLiteParams(max_clusters=cap, split_threshold=D_THRESHOLD)
    user_emb, item_emb = (CELLiteEmbedding(0, R, 100.0, params, g) for _ in range(2))
    feed = ReplayStreamFeed(table, FeedConfig("replay", batch_size=B, loss="mean", buffer=20), 0)
    feed.progressive = False
    return user_emb, item_emb, feed, [LiteSchedule("item", 0), LiteSchedule("user", 0)]

def run_one(rows: int, cap: int, threads: int, users: int = 0, items: int = 0, profile: bool = False) -> dict:
    """One timed configuration (in this process)."""
    import torch

    from cel.config import TrainConfig
    from cel.models.nmf import NMF
    from cel.train.grad_avg import GradientAveraging
    from cel.train.tasks import Regression
    from cel.train.trainer import Trainer

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    table, spec = stream_table(rows, users, items)
    gen_s = time.perf_counter() - t0
    user_emb, item_emb, feed, scheds = lite_setup(table, cap)
    cfg = TrainConfig(optimizer="gd", lr=LR, steps=10**9, eval_every=10**9, log_every=10**9)
    tr = Trainer(Regression(), feed, NMF(), user_emb, item_emb, cfg, reg=0.0,
                 callbacks=[GradientAveraging(), *scheds], log=lambda m: None)
    t1 = time.perf_counter()
    if profile:
        import cProfile
        import pstats
        cProfile.runctx("tr.fit()", globals(), {"tr": tr}, "/tmp/bench_cel_lite.prof")
        pstats.Stats("/tmp/bench_cel_lite.prof").sort_stats("tottime").print_stats(30)
    else:
        tr.fit()
    wall = time.perf_counter() - t1
    ue, ie = tr.user_emb, tr.item_emb
    entities = ue.n_admitted + ie.n_admitted
    mem = {k: ue.nbytes()[k] + ie.nbytes()[k] for k in ue.nbytes()}
    mem["buffers"] = feed.buffer.nbytes()
    mem["optimizer"] = optimizer_bytes(tr)
    ops = [s.ops for s in scheds]
    touched = ops[0]["optim_rows"] + sum(o["reassign_pairs"] + o["split_pairs"] + o["split_members"] for o in ops)
    split_s = sum(s.seconds["split"] for s in scheds)
    reassign_s = sum(s.seconds["reassign"] for s in scheds)
    sgd_s = tr.history.step_seconds * tr.step
    return {"rows": rows, "cap": cap, "threads": threads, "wall_s": wall, "gen_s": gen_s,
            "us": {"sgd_step": 1e6 * sgd_s / rows, "reassign": 1e6 * reassign_s / rows, "split": 1e6 * split_s / rows,
                   "feed_and_rest": 1e6 * (wall - sgd_s - reassign_s - split_s) / rows},
            "rows_touched_per_interaction": touched / rows,
            "us_per_interaction": 1e6 * wall / rows, "per_s": rows / wall,
            "step_s": tr.history.step_seconds, "steps": tr.step,
            "users": ue.n_admitted, "items": ie.n_admitted, "clusters": [ue.n_clusters, ie.n_clusters],
            "final_train_mse": sum(tr.history.train_loss[-20:]) / 20,
            "ops_per_interaction": {side: {k: v / max(1, s.ops["fresh"]) for k, v in s.ops.items() if k != "fresh"}
                                    for side, s in zip(("item", "user"), scheds)},
            "bytes": mem, "bytes_per_entity": {k: v / entities for k, v in mem.items()},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(rows: int, cap: int, threads: int, users: int = 0, items: int = 0) -> dict:
    """Run one configuration in a fresh process (clean timing and peak RSS)."""
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps([rows, cap, threads, users, items])],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(res: dict, small: bool) -> None:
    lo, hi, f_lo, f_hi = res["D_small"], res["D_large"], res["fixed_small"], res["fixed_large"]
    c_lo, c_hi = res["cap_small"], res["cap_large"]
    name = lambda n: f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"   # noqa: E731
    print(f"CEL-Lite benchmark ({'--small' if small else 'full'}): R = {R}, b = {B}, d = {D_THRESHOLD}, n = 20, "
          f"m = 10, SGD lr {LR}, {lo['threads']} thread(s), load average before start {res['load']}")
    print("  (us per interaction: total = SGD step + reassignment + splits + feed/rest; "
          "rows = rows touched per interaction)")
    for label, r in (("vocab ∝ D", lo), ("vocab ∝ D", hi), ("fixed vocab", f_lo), ("fixed vocab", f_hi),
                     ("cap", c_lo), ("cap", c_hi)):
        u = r["us"]
        print(f"  {label:11} D = {name(r['rows']):>4} cap = {r['cap']:>6}: {r['us_per_interaction']:6.2f} us "
              f"= {u['sgd_step']:5.2f} + {u['reassign']:5.2f} + {u['split']:5.2f} + {u['feed_and_rest']:5.2f}  "
              f"({r['per_s']:7,.0f}/s)  rows {r['rows_touched_per_interaction']:6.1f}  "
              f"M_q users/items {r['clusters'][0]}/{r['clusters'][1]}  entities {r['users']:,}/{r['items']:,}  "
              f"peak RSS {r['peak_rss_mb']:,.0f} MB")

    def ratio(a, b):
        t = b["us_per_interaction"] / a["us_per_interaction"]
        per_row = t / (b["rows_touched_per_interaction"] / a["rows_touched_per_interaction"])
        return f"{t:.3f}   (per row touched: {per_row:.3f})"
    print(f"time per interaction, D = {name(hi['rows'])} / D = {name(lo['rows'])}, vocabulary ∝ D: {ratio(lo, hi)}"
          f"   (goal 1 ± 0.25)")
    print(f"time per interaction, D = {name(f_hi['rows'])} / D = {name(f_lo['rows'])}, fixed vocabulary "
          f"({f_lo['users']:,} users, {f_lo['items']:,} items, buffers full): {ratio(f_lo, f_hi)}")
    print(f"time per interaction, cap {c_hi['cap']:,} / cap {c_lo['cap']} (D = {name(c_lo['rows'])}): "
          f"{ratio(c_lo, c_hi)}   (goal 1 ± 0.25)")
    print(f"throughput: {hi['per_s']:,.0f} interactions/s at D = {name(hi['rows'])} "
          f"(goal >= 100,000; {lo['threads']} thread(s))")
    print(f"peak RSS of the D = {name(hi['rows'])} run: {hi['peak_rss_mb']:,.0f} MB "
          f"(the stream's table itself: {hi['rows'] * 28 / 2**20:,.0f} MB)")
    per = hi["bytes_per_entity"]
    print(f"bytes per entity at D = {name(hi['rows'])} ({hi['users'] + hi['items']:,} users + items): "
          f"{sum(per.values()):.1f} = " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    ops = hi["ops_per_interaction"]["item"]
    print("rows touched per new interaction (item side, D = {}): ".format(name(hi["rows"]))
          + ", ".join(f"{k} {v:.2f}" for k, v in ops.items() if k in ("optim_rows", "reassign_pairs", "split_pairs",
                                                                      "split_members")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="D = 100k and 1M instead of 1M and 10M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--profile", help="profile one configuration 'rows,cap' in this process")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*json.loads(args.one))))
        return
    if args.profile:
        rows, cap = map(int, args.profile.split(","))
        run_one(rows, cap, args.threads, profile=True)
        return
    d_lo, d_hi = (100_000, 1_000_000) if args.small else (1_000_000, 10_000_000)
    res = {"load": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    fixed = (d_lo // 50, d_lo // 200)                    # users, items: buffers full already at d_lo
    res["D_small"] = child(d_lo, 1000, args.threads)
    res["cap_small"] = child(d_lo, 100, args.threads)
    res["cap_large"] = child(d_lo, 10_000, args.threads)
    res["fixed_small"] = child(d_lo, 1000, args.threads, *fixed)
    res["D_large"] = child(d_hi, 1000, args.threads)
    res["fixed_large"] = child(d_hi, 1000, args.threads, *fixed)
    report(res, args.small)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
