"""Benchmark: preparing a 10^6-row csv dataset (issue 18: under 30 s on 2 cores, peak memory
under 1 GB).

A generated file of ``--rows`` interactions with string ids (``user_123``, ``item-45``; Zipf
popularity over ``--users`` / ``--items``, so that warm pairs repeat and the keep_last policy
drops the earlier rows: about 15 % at the defaults), a rating and an epoch timestamp is written to a
temporary folder; then ``cel.data.prepare.prepare_dataset`` runs on it in a fresh process and this script
prints its wall time, CPU time and peak resident memory (``ru_maxrss`` of that child process). The
file is written before timing and is not part of the measurement. Nothing here asserts a speed.

    .venv/bin/python benchmarks/bench_csv.py [--rows 1000000] [--out benchmarks/out/csv.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHILD = """
import json, sys, time, resource
t0, c0 = time.perf_counter(), time.process_time()
from cel.data.prepare import prepare_dataset
ds = {"kind": "csv", "path": sys.argv[1], "columns": {"user": "user_id", "item": "item_id", "rating": "rating",
      "timestamp": "ts"}}
info = prepare_dataset("bench", ds, sys.argv[2], sys.argv[2] + "/arch", None)
print(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "users": info["users"], "items": info["items"], "interactions": info["interactions"],
                  "duplicates": info["duplicates"]}))
"""


def make_file(path: Path, rows: int, users: int, items: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pu = 1.0 / np.arange(1, users + 1) ** 0.8
    pi = 1.0 / np.arange(1, items + 1)
    u = rng.choice(users, rows, p=pu / pu.sum())
    i = rng.choice(items, rows, p=pi / pi.sum())
    frame = pd.DataFrame({"user_id": np.char.add("user_", u.astype(str)), "item_id": np.char.add("item-", i.astype(str)),
                          "rating": rng.integers(1, 6, rows), "ts": 1_500_000_000 + rng.permutation(rows)})
    frame.to_csv(path, index=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--out")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inter.csv"
        make_file(path, a.rows, a.users, a.items)
        size = path.stat().st_size
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(Path(tmp) / "prepared")],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode:
            sys.exit(r.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rec = {"rows": a.rows, "file_mb": size / 2**20, **json.loads(r.stdout.strip().splitlines()[-1]),
           "process_wall_s": wall, "peak_rss_mb": peak_mb}
    print(f"csv prepare: {a.rows:,} rows ({rec['file_mb']:.1f} MB), {rec['users']:,} users, {rec['items']:,} items, "
          f"{rec['duplicates']['rows_dropped']:,} duplicate rows dropped: {rec['wall_s']:.1f} s "
          f"({rec['cpu_s']:.1f} s CPU; process incl. imports {wall:.1f} s), peak RSS {peak_mb:.0f} MB")
    if a.out:
        Path(a.out).write_text(json.dumps(rec, indent=1) + "\n")


if __name__ == "__main__":
    main()
