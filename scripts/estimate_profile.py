"""Estimate a profile's CPU time from another profile's measured jobs (READINGS: paper-scale
configs are checked with `snakemake -n` and an estimate from measured per-job benchmark files,
labelled "estimated").

    python scripts/estimate_profile.py config/paper.yaml --from results/quick [--trials-from 6]

Each training run of the target profile is priced at the measured CPU time of the run with the
same task/dataset/variant/model/method/compression in the measured folder (any fold and seed: the
mean over those measured); each Optuna study at the measured study's CPU time scaled by the trial
budgets (target trials / measured trials). Runs with no measured counterpart are listed. Prints
the estimated CPU minutes and the wall time on N cores at perfect packing (a lower bound).
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

from cel.config import load_config

CELL = re.compile(r"(?P<cell>.+)/f\d+/s\d+\.tsv$")
STUDY = re.compile(r"(?P<cell>.+)/f\d+\.tsv$")


def measured(folder: Path, rule: str, pattern: re.Pattern) -> dict[str, float]:
    """cell (the run key without fold and seed) -> mean CPU seconds of its measured jobs."""
    cpu = defaultdict(list)
    for f in (folder / "benchmarks" / rule).rglob("*.tsv"):
        m = pattern.search(str(f.relative_to(folder / "benchmarks" / rule)))
        if m:
            cpu[m["cell"]].append(float(pd.read_csv(f, sep="\t").iloc[0]["cpu_time"]))
    return {k: sum(v) / len(v) for k, v in cpu.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="+")
    ap.add_argument("--from", dest="source", required=True, help="a results folder with benchmarks/")
    ap.add_argument("--trials-from", type=int, required=True, help="trials per study in the measured profile")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    cfg = load_config(*args.config, overrides={"only_datasets": "ml-100k"})
    src = Path(args.source)
    runs_cpu, study_cpu = measured(src, "train_run", CELL), measured(src, "tune_study", STUDY)
    total, missing = 0.0, []
    for key in cfg.runs():
        cell = key.key.rsplit("/", 2)[0]
        if cell in runs_cpu:
            total += runs_cpu[cell]
        else:
            missing.append(key.key)
    trials = cfg.raw.get("tuning", {}).get("trials", 0)
    n_studies = 0
    for key in cfg.studies():
        cell = key.key.rsplit("/", 2)[0]
        n_studies += 1
        if cell in study_cpu:
            total += study_cpu[cell] * trials / args.trials_from
        else:
            missing.append("study " + key.key)
    print(f"{len(cfg.runs())} training runs and {n_studies} studies ({trials} trials each) in {args.config}")
    print(f"ESTIMATED from {src}: {total / 60:.0f} CPU minutes = {total / 3600:.1f} CPU hours; "
          f"{total / 60 / args.cores:.0f} minutes on {args.cores} cores at best")
    if missing:
        print(f"{len(missing)} without a measured counterpart (not counted):", *missing[:20], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
