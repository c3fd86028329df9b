#!/usr/bin/env python
"""Peak RSS and wall time of each workflow rule's command, to size the profiles' resources.

Runs the `cel` command of every non-training rule on ML-100k (from the local mirror) under
/usr/bin/time -v in a scratch results dir, and reads the Snakemake benchmark files
(results/**/benchmarks/**/*.tsv: max_rss, s) of the training and tuning jobs already run here.

    .venv/bin/python scripts/measure_rules.py [--out benchmarks/out/rule_resources.json]
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict) -> dict:
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, cwd=REPO)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return {"max_rss_mb": rss / 1024, "s": wall}


def from_benchmarks() -> dict:
    out: dict = {}
    for f in glob.glob(str(REPO / "results/**/benchmarks/**/*.tsv"), recursive=True):
        rule = Path(f).relative_to(REPO).parts
        rule = rule[rule.index("benchmarks") + 1]
        row = next(csv.DictReader(open(f), delimiter="\t"), None)
        if not row or row["max_rss"] in ("NA", "-", ""):
            continue
        d = out.setdefault(rule, {"n": 0, "max_rss_mb": 0.0, "s": 0.0, "where": ""})
        d["n"] += 1
        if float(row["s"]) > d["s"]:
            d["s"], d["where"] = float(row["s"]), str(Path(f).relative_to(REPO))
        d["max_rss_mb"] = max(d["max_rss_mb"], float(row["max_rss"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out")
    args = ap.parse_args()
    cel = [sys.executable, "-m", "cel.cli"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory() as tmp:
        prof = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
        prof.update({"results_dir": f"{tmp}/results", "datasets": {"ml-100k": {"kind": "ml-100k"}},
                     "variants": {"original": {"kind": "original"}},
                     "grid": [{"datasets": ["ml-100k"], "methods": ["full"], "compressions": [100], "folds": [0]}]})
        prof["train"]["steps"] = 50
        cfg = Path(tmp) / "p.yaml"
        cfg.write_text(yaml.safe_dump(prof))
        c = str(cfg)
        res = {}
        res["prepare_dataset"] = timed([*cel, "prepare", c, "--dataset", "ml-100k"], env)
        res["make_variant"] = timed([*cel, "variant", c, "--dataset", "ml-100k", "--variant", "original"], env)
        res["make_split"] = timed([*cel, "split", c, "--dataset", "ml-100k", "--variant", "original"], env)
        run = "regression/ml-100k/original/nmf/full/cr100/f0/s0"
        out = f"{tmp}/results/runs/{run}"
        res["train_run (50 steps)"] = timed([*cel, "train", c, "--run", run, "--out", out, "--threads", "1"], env)
        res["aggregate_runs"] = timed([*cel, "summarize", c, "--out", f"{tmp}/results/summary.csv"], env)
        res["mirror_mlflow"] = timed([*cel, "mirror", c, out], env)
    print(json.dumps({"ml-100k commands (/usr/bin/time -v)": res, "snakemake benchmark files": from_benchmarks()},
                     indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"commands": res, "benchmarks": from_benchmarks()}, indent=1))


if __name__ == "__main__":
    main()
