"""Web-scale stream benchmark (issue 14): CEL-Lite streams power-law interaction streams of growing
size D, read chunk by chunk from Parquet on disk, and the measured cost per interaction and per
entity shows the O(DR) scaling.

For each D (default 10^5, 10^6, 10^7):

  1. the power-law generator (``cel.data.stream``: seed, Zipf exponents 0.9/0.9, D/10 users, D/50
     items, 50 item groups, chunks of 10^6 rows) writes ``part-NNNN.parquet`` files (timed apart);
  2. a fresh process reads the parts one row group at a time into the 28 B/row training table
     (user, item int64; rating float32; timestamp int64; the only thing that grows with D besides
     the entity state), and runs the real loop: ``Trainer`` on the ``replay`` feed (b = 2000,
     n = 20), NMF R = 64, CEL-Lite on users and items (m = 10, t1 = 1, d = 100, cap 1,000 clusters
     per side), ``GradientAveraging``, one ``LiteSchedule`` per side, SGD lr 0.05; progressive
     scoring off (O(D) per evaluation, not CEL-Lite's cost) — the configuration of
     benchmarks/bench_cel_lite.py;
  3. it reports throughput, time per interaction, peak RSS (ru_maxrss of that process, and the
     part above the table and the interpreter), bytes per user and per item (cluster embeddings,
     assignments, cluster index), replay buffer bytes per entity, and the number of clusters per
     side over time (every 5% of the stream).

Ratios between consecutive sizes are printed (goal for time per interaction: 1 ± 0.25). 10^8 is
extrapolated from the two largest measured sizes and labelled as an ESTIMATE unless --sizes
includes it (it needs ~2.8 GB for the table, ~4 GB of Parquet and about D / throughput seconds).

    .venv/bin/python benchmarks/bench_stream_scale.py                         # 1e5 1e6 1e7
    .venv/bin/python benchmarks/bench_stream_scale.py --sizes 1e5 1e6         # quick (~1 min)
    .venv/bin/python benchmarks/bench_stream_scale.py --json benchmarks/out/stream_scale.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_cel_lite", HERE / "bench_cel_lite.py")
lite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lite)
R, B, D_THRESHOLD, LR, CAP = lite.R, lite.B, lite.D_THRESHOLD, lite.LR, 1000
ROW_BYTES = 8 + 8 + 4 + 8


def spec_for(rows: int):
    from cel.data.stream import StreamSpec
    return StreamSpec(rows=rows, users=max(100, rows // 10), items=max(50, rows // 50), groups=50, rank=8,
                      user_exponent=0.9, item_exponent=0.9, chunk=min(rows, 1_000_000), seed=0)


def write_parquet(rows: int, folder: Path) -> dict:
    """The stream as part-NNNN.parquet files (one chunk each); returns timing and size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cel.data.stream import iter_chunks
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, chunk in enumerate(iter_chunks(spec_for(rows))):
        pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), folder / f"part-{i:04d}.parquet",
                       row_group_size=250_000)
    size = sum(p.stat().st_size for p in folder.glob("*.parquet"))
    return {"gen_s": time.perf_counter() - t0, "parquet_bytes": size}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_one(rows: int, folder: str, threads: int) -> dict:
    """Load the Parquet parts batch by batch into the table, then stream it through CEL-Lite."""
    import pyarrow.parquet as pq
    import torch

    from cel.config import TrainConfig
    from cel.models.nmf import NMF
    from cel.train.feeds import InteractionTable
    from cel.train.grad_avg import GradientAveraging
    from cel.train.tasks import Regression
    from cel.train.trainer import Callback, Trainer

    torch.set_num_threads(threads)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # interpreter + torch
    spec = spec_for(rows)
    t0 = time.perf_counter()
    user, item = torch.empty(rows, dtype=torch.long), torch.empty(rows, dtype=torch.long)
    rating, ts = torch.empty(rows, dtype=torch.float32), torch.empty(rows, dtype=torch.long)
    pos = 0
    for part in sorted(Path(folder).glob("part-*.parquet")):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=250_000,
                                                       columns=["user", "item", "rating", "timestamp"]):
            n = batch.num_rows
            for dst, name in ((user, "user"), (item, "item"), (rating, "rating"), (ts, "timestamp")):
                dst[pos:pos + n] = torch.from_numpy(batch.column(name).to_numpy())
            pos += n
    assert pos == rows, (pos, rows)
    load_s = time.perf_counter() - t0
    table = InteractionTable(user, item, rating, ts, spec.users, spec.items)
    after_load_rss = rss_mb()

    user_emb, item_emb, feed, scheds = lite.lite_setup(table, CAP)
    every = max(1, rows // B // 20)
    timeline = []

    class Timeline(Callback):
        def on_step_end(self, tr):
            if tr.step % every == 0:
                timeline.append({"interactions": min(rows, tr.step * B), "s": time.perf_counter() - t1,
                                 "user_clusters": int(tr.user_emb.n_clusters), "item_clusters": int(tr.item_emb.n_clusters),
                                 "users": int(tr.user_emb.n_admitted), "items": int(tr.item_emb.n_admitted),
                                 "rss_mb": round(rss_mb(), 1)})

    cfg = TrainConfig(optimizer="gd", lr=LR, steps=10**9, eval_every=10**9, log_every=10**9)
    tr = Trainer(Regression(), feed, NMF(), user_emb, item_emb, cfg, reg=0.0,
                 callbacks=[GradientAveraging(), *scheds, Timeline()], log=lambda m: None)
    t1, c1 = time.perf_counter(), time.process_time()
    tr.fit()
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    ue, ie = tr.user_emb, tr.item_emb
    users, items = ue.n_admitted, ie.n_admitted
    ub, ib = ue.nbytes(), ie.nbytes()
    buf, opt = feed.buffer.nbytes(), lite.optimizer_bytes(tr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "threads": threads, "wall_s": wall, "load_s": load_s, "steps": tr.step,
            "per_s": rows / wall, "us_per_interaction": 1e6 * wall / rows,
            "cpu_s": cpu, "cpu_us_per_interaction": 1e6 * cpu / rows,
            "users": users, "items": items, "clusters": [ue.n_clusters, ie.n_clusters],
            "bytes_per_user": sum(ub.values()) / max(1, users), "bytes_per_item": sum(ib.values()) / max(1, items),
            "user_bytes": ub, "item_bytes": ib, "buffer_bytes": buf, "optimizer_bytes": opt,
            "buffer_bytes_per_entity": buf / max(1, users + items),
            "state_bytes": sum(ub.values()) + sum(ib.values()) + buf + opt,
            "table_bytes": rows * ROW_BYTES, "base_rss_mb": base_rss, "after_load_rss_mb": after_load_rss,
            "peak_rss_mb": peak, "final_train_mse": sum(tr.history.train_loss[-20:]) / 20, "timeline": timeline}


def child(rows: int, folder: Path, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps([rows, str(folder), threads])],
                         capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def name(n: float) -> str:
    return f"1e{len(str(int(n))) - 1}" if str(int(n)).rstrip("0") == "1" else f"{n:,.0f}"


def report(res: list[dict], load: str) -> dict:
    print(f"CEL-Lite on power-law streams from Parquet: R = {R}, b = {B}, n = 20, m = 10, d = {D_THRESHOLD}, cap {CAP}, "
          f"{res[0]['threads']} thread(s); load average before start {load}")
    print(f"{'D':>5} {'gen s':>6} {'load s':>6} {'train s':>8} {'CPU s':>7} {'inter/s':>9} {'us/inter':>8} {'CPU us':>7} {'peak RSS MB':>11} "
          f"{'RSS-table-base MB':>17} {'B/user':>7} {'B/item':>7} {'buf B/ent':>9} {'users':>10} {'items':>9} {'M_q u/i':>9}")
    for r in res:
        above = r["peak_rss_mb"] - r["table_bytes"] / 2**20 - r["base_rss_mb"]
        print(f"{name(r['rows']):>5} {r['gen_s']:6.1f} {r['load_s']:6.1f} {r['wall_s']:8.1f} {r['cpu_s']:7.1f} {r['per_s']:9,.0f} "
              f"{r['us_per_interaction']:8.2f} {r['cpu_us_per_interaction']:7.2f} {r['peak_rss_mb']:11,.0f} {above:17,.0f} {r['bytes_per_user']:7.1f} "
              f"{r['bytes_per_item']:7.1f} {r['buffer_bytes_per_entity']:9.1f} {r['users']:10,} {r['items']:9,} "
              f"{r['clusters'][0]:>4}/{r['clusters'][1]:<4}")
    ratios = []
    for a, b in zip(res, res[1:]):
        x = {"from": a["rows"], "to": b["rows"], "time_per_interaction": b["us_per_interaction"] / a["us_per_interaction"],
             "cpu_time_per_interaction": b["cpu_us_per_interaction"] / a["cpu_us_per_interaction"],
             "peak_rss_growth_per_interaction": ((b["peak_rss_mb"] - a["peak_rss_mb"]) * 2**20) / (b["rows"] - a["rows"]),
             "state_bytes_per_interaction": [a["state_bytes"] / a["rows"], b["state_bytes"] / b["rows"]],
             "bytes_per_user": b["bytes_per_user"] / a["bytes_per_user"],
             "bytes_per_item": b["bytes_per_item"] / a["bytes_per_item"]}
        ratios.append(x)
        print(f"D {name(a['rows'])} -> {name(b['rows'])}: time per interaction x{x['time_per_interaction']:.3f} wall, "
              f"x{x['cpu_time_per_interaction']:.3f} CPU (goal 1 ± 0.25); bytes per user x{x['bytes_per_user']:.3f}, per item x{x['bytes_per_item']:.3f}; "
              f"peak RSS grows {x['peak_rss_growth_per_interaction']:.1f} B per added interaction "
              f"(table {ROW_BYTES} B + entity state)")
    last = res[-1]
    est = None
    if last["rows"] < 10**8 and len(res) >= 2:
        prev = res[-2]
        slope = (last["peak_rss_mb"] - prev["peak_rss_mb"]) / (last["rows"] - prev["rows"])
        est = {"rows": 10**8, "ESTIMATE": True,
               "basis": f"time per interaction of D = {name(last['rows'])}; peak RSS extrapolated linearly "
                        f"from D = {name(prev['rows'])} -> {name(last['rows'])}",
               "wall_s": 10**8 * last["us_per_interaction"] / 1e6, "per_s": last["per_s"],
               "peak_rss_mb": last["peak_rss_mb"] + slope * (10**8 - last["rows"]),
               "table_mb": 10**8 * ROW_BYTES / 2**20, "users": 10**7, "items": 2 * 10**6}
        print(f"ESTIMATE (not run) D = 1e8: {est['wall_s'] / 60:,.0f} min at {est['per_s']:,.0f}/s, peak RSS "
              f"~{est['peak_rss_mb'] / 1024:,.1f} GiB (table {est['table_mb'] / 1024:.1f} GiB); basis: {est['basis']}")
    tl = last["timeline"]
    if len(tl) >= 4:            # within one process (same load): marginal cost early vs late in the stream
        q = len(tl) // 4
        early = (tl[q]["s"] - tl[0]["s"]) / (tl[q]["interactions"] - tl[0]["interactions"])
        late = (tl[-1]["s"] - tl[-1 - q]["s"]) / (tl[-1]["interactions"] - tl[-1 - q]["interactions"])
        print(f"marginal time per interaction within D = {name(last['rows'])}: {1e6 * early:.2f} us "
              f"({tl[0]['interactions']:,}-{tl[q]['interactions']:,}) vs {1e6 * late:.2f} us "
              f"({tl[-1 - q]['interactions']:,}-{tl[-1]['interactions']:,}): ratio {late / early:.3f}")
    print("clusters over time (largest D): " + ", ".join(
        f"{t['interactions'] / 1e6:g}M: {t['user_clusters']}/{t['item_clusters']}" for t in last["timeline"][::4]))
    return {"ratios": ratios, "estimate_1e8": est}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dir", default="/tmp/cel-stream-scale", help="where the Parquet parts are written")
    ap.add_argument("--keep", action="store_true", help="keep the Parquet parts")
    ap.add_argument("--json")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*json.loads(args.one))))
        return
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    res = []
    for d in sorted(int(s) for s in args.sizes):
        folder = Path(args.dir) / f"D{d}"
        shutil.rmtree(folder, ignore_errors=True)
        gen = write_parquet(d, folder)
        r = child(d, folder, args.threads)
        r.update(gen)
        res.append(r)
        print(f"  D = {name(d)}: {r['per_s']:,.0f}/s, peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    summary = report(res, load)
    print(f"load average after: {load_after} (wall-clock rates depend on it; CPU time per interaction much less)")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "runs": res, **summary}, indent=1))


if __name__ == "__main__":
    main()
