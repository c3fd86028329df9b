"""Timing helpers shared by the deep-model benchmarks (bench_deep.py, bench_deep_reassign.py):
the common command line, the machine line printed before the run, "fit ``steps`` more steps and
time it", and the JSON result file. The scripts run as ``python benchmarks/<name>.py``, so this
module is imported from the script's folder."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Any

import torch

from cel.train.trainer import History, Trainer


def parse_args(doc: str, *, steps: int, warmup: int, extra: tuple[tuple[str, type, Any], ...] = ()) -> argparse.Namespace:
    """``--threads`` (default 2), ``--steps``, ``--warmup``, then each ``(flag, type, default)`` of
    ``extra``, then ``--json`` (default: no file); the description is the first line of ``doc``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--warmup", type=int, default=warmup)
    for flag, kind, default in extra:
        ap.add_argument(flag, type=kind, default=default)
    ap.add_argument("--json", default="")
    return ap.parse_args()


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads and print torch's version, the threads, the CPUs and the
    load average before the run (rates drop sharply on a machine busy with other work)."""
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} before")


def fit_more(tr: Trainer, steps: int) -> tuple[float, History]:
    """Run ``tr.fit()`` for ``steps`` steps beyond where it stands: (wall seconds, its History)."""
    tr.cfg = dataclasses.replace(tr.cfg, steps=tr.step + steps)
    t0 = time.perf_counter()
    h = tr.fit()
    return time.perf_counter() - t0, h


def save_json(path: str, payload: dict) -> None:
    """Write ``payload`` to ``path`` (indent 1), creating its folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1)
