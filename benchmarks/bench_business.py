"""The Table 4 analogue (issue #16) from whatever runs of a profile exist so far.

    .venv/bin/python benchmarks/bench_business.py config/business.yaml [--results DIR]

Reads every metrics.json of the profile's grid that exists (the workflow's ``table4`` target needs
them all; this prints the subset, with n per cell), writes ``<results>/tables/table4_partial.*``
through the table machinery, as the target does: cells, both claims ("CEL-Lite > Modulo at equal
size", superiority; "CEL-Lite ≥ full", non-inferiority within 0.001 AUC), paired by seed, Holm
over the table, and ``table4_partial_sizes.csv``, the embedding-table size ratios full / method.
Also prints the wall time per run (the runs' own timing).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from cel import paths
from cel.config import load_config
from cel.report import summarize
from cel.tables import TABLES, cell_stats, check_claims, table_runs, write_table
from cel.tablespecs.table4 import size_ratios


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("config")
    ap.add_argument("--results", help="results_dir to read (default: the profile's)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    root = Path(args.results) if args.results else Path(cfg.results_dir)
    spec = TABLES["table4"]
    runs = table_runs(spec, cfg.runs())
    files = [paths.run_dir(root, k) / "metrics.json" for k in runs]
    done = [f for f in files if f.exists()]
    print(f"{len(done)} of {len(files)} runs of table4 have metrics.json")
    if not done:
        return 1
    summary = summarize(done)
    out = root / "tables"
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / "table4_partial.summary.csv", index=False)
    write_table(summary, "table4", out / "table4_partial.tex")
    stats = cell_stats(summary, spec)
    pd.set_option("display.width", 200)
    print(stats[["dataset", "model", "method", "compression", "mean", "std", "n"]].to_string(index=False))
    claims = check_claims(stats, spec, summary)
    if len(claims):
        print("\nclaims (paired by seed, one-sided t, Holm over the table's claims; 'at compression 100' = "
              "against the full embedding):")
        print(claims[["claim", "dataset", "model", "compression", "ours_better", "ours_worse", "mean_diff", "n_pairs",
                      "p_value", "p_holm", "significant"]].to_string(index=False))
    sizes = size_ratios(summary)
    if len(sizes):
        print("\nembedding size, full / method (stored parameters; the table of rows x R alone):")
        print(sizes.to_string(index=False))
    walls = []
    for f in done:
        rec = json.loads(f.read_text())
        r = rec["run"]
        walls.append({"dataset": r["dataset"], "model": r["model"], "method": r["method"], "compression": r["compression"],
                      "wall_s": rec["timing"]["wall_seconds"], "steps": rec["metrics"]["steps"],
                      "embedding_params": rec["metrics"]["embedding_params"]})
    w = pd.DataFrame(walls).groupby(["dataset", "model", "method", "compression"]).agg(
        wall_s=("wall_s", "mean"), runs=("wall_s", "size"), steps=("steps", "mean"),
        embedding_params=("embedding_params", "mean")).reset_index()
    print("\nwall time per run (s, mean over seeds) and stored embedding parameters:")
    print(w.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
