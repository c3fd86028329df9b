"""The ``cel`` command line: every workflow step, usable with or without Snakemake.

    cel validate CONFIG...                      check a profile, print the runs it defines
    cel fetch    CONFIG... --dataset D          raw archive from the mirror or the canonical URL
    cel prepare  CONFIG... --dataset D          raw archive -> prepared parquet tables
    cel variant  CONFIG... --dataset D --variant V
    cel split    CONFIG... --dataset D --variant V
    cel train    CONFIG... --run D/V/MODEL/METHOD/crC/fK [--out DIR] [--threads N] [--mlflow]
    cel mirror   CONFIG... RUN_DIR...           mirror metrics.json files to MLflow
    cel summarize CONFIG... [--out CSV]         all runs of the grid -> summary.csv (long format)
    cel table    CONFIG... --name table7 [--summary CSV] [--out TEX]   (+ cells .csv, claims _claims.csv)

CONFIG is one or more YAML profiles (later ones override earlier ones).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cel import paths
from cel.config import ConfigError, RunSpec, load_config


def _parse_run(text: str) -> RunSpec:
    parts = text.strip("/").split("/")
    if len(parts) != 6 or not parts[4].startswith("cr") or not parts[5].startswith("f"):
        raise ConfigError(f"--run must look like DATASET/VARIANT/MODEL/METHOD/crC/fK, got {text!r}")
    return RunSpec(parts[0], parts[1], parts[2], parts[3], parts[4][2:], int(parts[5][1:]))


def _check_run(cfg, spec: RunSpec) -> None:
    from cel.embeddings import EMBEDDINGS
    from cel.models import MODELS

    for what, name, known in (("dataset", spec.dataset, cfg.raw["datasets"]),
                              ("variant", spec.variant, cfg.raw["variants"]),
                              ("model", spec.model, MODELS),
                              ("method", spec.method, {**EMBEDDINGS, **cfg.raw["methods"]})):
        if name not in known:
            raise ConfigError(f"--run: unknown {what} '{name}' (known: {', '.join(sorted(known))})")
    if spec.fold >= cfg.folds:
        raise ConfigError(f"--run: fold {spec.fold} >= split.folds={cfg.folds}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, help_):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("config", nargs="+", help="YAML profile(s)")
        return sp

    add("validate", "validate a profile and list its runs")
    for name in ("fetch", "prepare", "variant", "split"):
        sp = add(name, f"data step: {name}")
        sp.add_argument("--dataset", required=True)
        if name not in ("fetch", "prepare"):
            sp.add_argument("--variant", required=True)
    sp = add("train", "train one run")
    sp.add_argument("--run", required=True, help="DATASET/VARIANT/MODEL/METHOD/crC/fK")
    sp.add_argument("--out", help="run folder (default: RESULTS/runs/<run>)")
    sp.add_argument("--threads", type=int, help="torch threads (default: train.threads)")
    sp.add_argument("--mlflow", action="store_true", help="also mirror the run to MLflow")
    sp = sub.add_parser("mirror", help="mirror run folders to MLflow")
    sp.add_argument("config", help="YAML profile")
    sp.add_argument("run_dirs", nargs="+")
    sp = add("summarize", "collect the grid's metrics.json into summary.csv")
    sp.add_argument("--out")
    sp = add("table", "render a LaTeX table from summary.csv")
    sp.add_argument("--name", required=True)
    sp.add_argument("--summary")
    sp.add_argument("--out")

    args = p.parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"cel: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the data errors carry their own clear message
        from cel.data.fetch import DataError

        if isinstance(exc, DataError):
            print(f"cel: {exc}", file=sys.stderr)
            return 3
        raise


def _dispatch(args) -> int:
    configs = args.config if isinstance(args.config, list) else [args.config]
    cfg = load_config(*configs)
    res = cfg.results_dir
    if args.cmd == "validate":
        runs = cfg.runs()
        print(f"{configs}: valid; {len(runs)} run(s)")
        for r in runs:
            print("  " + r.key)
        return 0
    if args.cmd in ("fetch", "prepare", "variant", "split"):
        from cel.data import pipeline

        if args.dataset not in cfg.raw["datasets"]:
            raise ConfigError(f"--dataset: unknown dataset '{args.dataset}'")
        if args.cmd == "fetch":
            from cel.data.fetch import fetch_archive
            from cel.data.sources import SOURCES

            kind = cfg.dataset(args.dataset)["kind"]
            if kind not in SOURCES:
                raise ConfigError(f"--dataset: '{args.dataset}' ({kind}) has no archive to fetch")
            print(fetch_archive(SOURCES[kind], cfg.archives_dir, cfg.mirror))
        elif args.cmd == "prepare":
            pipeline.run_prepare(cfg, args.dataset)
        elif args.cmd == "variant":
            pipeline.run_variant(cfg, args.dataset, args.variant)
        else:
            pipeline.run_split(cfg, args.dataset, args.variant)
        return 0
    if args.cmd == "train":
        from cel.train.run import execute_run

        spec = _parse_run(args.run)
        _check_run(cfg, spec)
        out = Path(args.out) if args.out else paths.run_dir(res, spec)
        execute_run(cfg, spec, out, threads=args.threads)
        if args.mlflow:
            from cel.tracking import mirror_run

            mirror_run(out, res, cfg.raw["mlflow"]["tracking_uri"], cfg.raw["mlflow"]["experiment"])
        return 0
    if args.cmd == "mirror":
        from cel.tracking import mirror_run

        for d in args.run_dirs:
            rid = mirror_run(d, res, cfg.raw["mlflow"]["tracking_uri"], cfg.raw["mlflow"]["experiment"])
            print(f"{d} -> mlflow run {rid}")
        return 0
    if args.cmd == "summarize":
        from cel.io import atomic_path
        from cel.report import summarize

        files = [paths.run_dir(res, s) / "metrics.json" for s in cfg.runs()]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise ConfigError(f"{len(missing)} run(s) of the grid have no metrics.json yet, e.g. {missing[0]}")
        out = Path(args.out) if args.out else paths.summary_path(res)
        with atomic_path(out) as tmp:
            summarize(files).to_csv(tmp, index=False)
        print(f"wrote {out} ({len(files)} runs)")
        return 0
    if args.cmd == "table":
        import pandas as pd

        from cel.io import write_text
        from cel.tables import TABLES, cell_stats, check_claims, render

        if args.name not in TABLES:
            raise ConfigError(f"--name: unknown table '{args.name}' (known: {', '.join(TABLES)})")
        summary = pd.read_csv(args.summary or paths.summary_path(res), dtype={"compression": str})
        out = Path(args.out) if args.out else paths.table_path(res, args.name)
        write_text(out, render(summary, TABLES[args.name]))
        spec = TABLES[args.name]
        cells = cell_stats(summary, spec)
        stats = out.with_suffix(".csv")     # the same cells, machine-readable: mean, std, n, paper, delta
        write_text(stats, cells.to_csv(index=False))
        claims = check_claims(cells, spec)
        claims_path = out.with_name(f"{out.stem}_claims.csv")
        write_text(claims_path, claims.to_csv(index=False))
        for r in claims.itertuples():
            print(f"{'holds ' if r.holds else 'FAILS '} {r.dataset} {r.compression:>4}%: {r.claim:<28} "
                  f"{r.ours_better:.4f} vs {r.ours_worse:.4f}")
        print(f"wrote {out}, {stats} and {claims_path} ({int(claims['holds'].sum())}/{len(claims)} claims hold)")
        return 0
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())
