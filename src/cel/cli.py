"""The ``cel`` command line: every workflow step, usable with or without Snakemake.

    cel validate CONFIG... [--dataset D]        check a profile, print the runs it defines (D: a csv file's stats)
    cel fetch    CONFIG... --dataset D          raw archive from the mirror or the canonical URL, verified
    cel prepare  CONFIG... --dataset D          raw archive -> prepared parquet tables
    cel variant  CONFIG... --dataset D --variant V
    cel split    CONFIG... --dataset D --variant V
    cel train    CONFIG... --run TASK/D/V/MODEL/METHOD/crC/fK/sS [--out DIR] [--threads N] [--mlflow]
    cel tune     CONFIG... --study TASK/D/V/MODEL/METHOD/crC/fK/sS [--workers N]   one Optuna study
    cel mirror   CONFIG RUN_DIR... [--record F] mirror metrics.json files to MLflow (idempotent)
    cel mirror-study CONFIG STUDY_DIR...        a study (parent run) and its trials (nested) to MLflow
    cel summarize CONFIG... [--out CSV]         all runs of the grid -> summary.csv (long format)
    cel table    CONFIG... --name table7 [--summary CSV] [--out TEX] [--html F]   (+ cells .csv, claims _claims.csv)
    cel readme   CONFIG... [--check] [--profile quick]   results -> docs/results/ -> the README's generated blocks
    cel figure   CONFIG... --run LABEL=RUN_DIR... --out PNG   progressive score of stream runs
    cel plot     CONFIG... --name fig3|fig4|fig5|fig6|fig7b|prop1 --out PATH   a paper figure (PDF+PNG+CSV)
    cel report   CONFIG... [--results NAME=DIR] [--out TEX]   report.tex (+ PDF with a TeX engine)

CONFIG is one or more YAML profiles (later ones override earlier ones). Each subcommand is one
entry of ``COMMANDS`` (its arguments and its handler); ``main`` dispatches through the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from cel import paths
from cel.config import ProjectConfig, load_config
from cel.errors import ConfigError, DataError
from cel.runkey import RunKey
from cel import report_doc as _report_doc
from cel.figs import cli as _figs


def check_run(cfg: ProjectConfig, key: RunKey) -> None:
    """A run key names only configured things (message names the unknown one)."""
    from cel.embeddings import EMBEDDINGS
    from cel.models import MODELS

    for what, name, known in (("task", key.task, cfg.raw["tasks"]),
                              ("dataset", key.dataset, cfg.raw["datasets"]),
                              ("variant", key.variant, cfg.raw["variants"]),
                              ("model", key.model, MODELS),
                              ("method", key.method, {**EMBEDDINGS, **cfg.raw["methods"]})):
        if name not in known:
            raise ConfigError(f"--run: unknown {what} '{name}' (known: {', '.join(sorted(known))})")
    if key.fold >= cfg.folds:
        raise ConfigError(f"--run: fold {key.fold} >= split.folds={cfg.folds}")


def _dataset(cfg: ProjectConfig, name: str) -> str:
    if name not in cfg.raw["datasets"]:
        raise ConfigError(f"--dataset: unknown dataset '{name}' (known: {', '.join(cfg.raw['datasets'])})")
    return name


# ------------------------------------------------------------------------------ handlers
def cmd_validate(cfg: ProjectConfig, args) -> int:
    if getattr(args, "dataset", None):     # one dataset: its mapping checked on the file's first lines
        ds = cfg.dataset(_dataset(cfg, args.dataset))
        if ds["kind"] != "csv":
            print(f"{args.dataset}: kind {ds['kind']} (archives are verified by `cel fetch`; nothing to check here)")
            return 0
        from cel.data.csv_source import describe

        for line in describe(args.dataset, ds):
            print(line)
        return 0
    runs = cfg.runs()
    print(f"{args.config}: valid; {len(runs)} run(s)")
    for r in runs:
        print("  " + r.key)
    return 0


def cmd_fetch(cfg: ProjectConfig, args) -> int:
    from cel.data.fetch import fetch_archive
    from cel.data.sources import SOURCES

    kind = cfg.dataset(_dataset(cfg, args.dataset))["kind"]
    if kind not in SOURCES:
        raise ConfigError(f"--dataset: '{args.dataset}' ({kind}) has no archive to fetch")
    print(fetch_archive(SOURCES[kind], cfg.archives_dir, cfg.mirror))
    return 0


def cmd_prepare(cfg: ProjectConfig, args) -> int:
    from cel.data.pipeline import run_prepare

    run_prepare(cfg, _dataset(cfg, args.dataset))
    return 0


def cmd_variant(cfg: ProjectConfig, args) -> int:
    from cel.data.pipeline import run_variant

    run_variant(cfg, _dataset(cfg, args.dataset), args.variant)
    return 0


def cmd_split(cfg: ProjectConfig, args) -> int:
    from cel.data.pipeline import run_split

    run_split(cfg, _dataset(cfg, args.dataset), args.variant)
    return 0


def cmd_train(cfg: ProjectConfig, args) -> int:
    from cel.train.run import execute_run

    key = RunKey.parse(args.run)
    check_run(cfg, key)
    out = Path(args.out) if args.out else paths.run_dir(cfg.results_dir, key)
    fixed = None
    if args.params:
        from cel.tune.study import load_best

        fixed = load_best(args.params)
    execute_run(cfg, key, out, threads=args.threads, fixed=fixed)
    if args.mlflow:
        from cel.tracking import mirror_run

        mirror_run(out, cfg.results_dir, cfg.raw["mlflow"]["tracking_uri"], cfg.raw["mlflow"]["experiment"])
    return 0


def _study(cfg: ProjectConfig, text: str) -> RunKey:
    key = RunKey.parse(text)
    check_run(cfg, key)
    if cfg.method_tune(key) is None:
        raise ConfigError(f"--study: {key.key} is not tuned by any grid block (grid[].tune)")
    return key


def cmd_tune(cfg: ProjectConfig, args) -> int:
    """One Optuna study with N worker processes -> best_params.yaml."""
    from cel.tune.study import tune

    key = _study(cfg, args.study)
    out = Path(args.out) if args.out else paths.study_dir(cfg.results_dir, key)
    workers = args.workers or cfg.raw["tuning"]["workers"]
    rec = tune(cfg, key, args.config, out, workers, threads=args.threads)
    print(f"{rec['study']}: best {rec['best_value']:.4f} (trial {rec['best_trial']}) {rec['params']} {rec['trials']}")
    return 0


def cmd_tune_worker(cfg: ProjectConfig, args) -> int:
    from cel.tune.study import run_worker

    ran = run_worker(cfg, _study(cfg, args.study), Path(args.out), args.worker, args.threads)
    print(f"worker {args.worker}: {ran} trial(s)")
    return 0


def cmd_mirror_study(cfg: ProjectConfig, args) -> int:
    from cel.tune.mirror import mirror_study

    for d in args.study_dirs:
        out = mirror_study(d, cfg.results_dir, cfg.raw["mlflow"]["tracking_uri"], cfg.raw["mlflow"]["experiment"])
        print(f"{d} -> mlflow parent {out['parent_run_id']}, {len(out['trials'])} trial run(s)")
    return 0


def _args_mirror(sp):
    sp.add_argument("run_dirs", nargs="+")
    sp.add_argument("--record", help="write {run folder: MLflow run id} here (the workflow's batch output)")


def cmd_mirror(cfg: ProjectConfig, args) -> int:
    from cel.io import write_json
    from cel.tracking import mirror_run, resolve_tracking_uri

    ids = {}
    for i, d in enumerate(args.run_dirs, 1):
        ids[d] = mirror_run(d, cfg.results_dir, cfg.raw["mlflow"]["tracking_uri"], cfg.raw["mlflow"]["experiment"])
        print(f"[{i}/{len(args.run_dirs)}] {d} -> mlflow run {ids[d]}", flush=True)
    if args.record:
        write_json(args.record, {"tracking_uri": resolve_tracking_uri(cfg.raw["mlflow"]["tracking_uri"],
                                                                      cfg.results_dir), "runs": ids})
    return 0


def cmd_summarize(cfg: ProjectConfig, args) -> int:
    """summary.csv from the grid's metrics.json files only (never waits on MLflow)."""
    from cel.io import atomic_path
    from cel.report import summarize

    runs = cfg.runs()
    if args.table:
        from cel.tables import TABLES, table_runs

        if args.table not in TABLES:
            raise ConfigError(f"--table: unknown table '{args.table}' (known: {', '.join(TABLES)})")
        runs = table_runs(TABLES[args.table], runs)
    files = [paths.run_dir(cfg.results_dir, k) / "metrics.json" for k in runs]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise ConfigError(f"{len(missing)} run(s) of the grid have no metrics.json yet, e.g. {missing[0]}")
    out = Path(args.out) if args.out else paths.summary_path(cfg.results_dir)
    with atomic_path(out) as tmp:
        summarize(files).to_csv(tmp, index=False)
    print(f"wrote {out} ({len(files)} runs)")
    return 0


def cmd_table(cfg: ProjectConfig, args) -> int:
    import pandas as pd

    from cel.tables import TABLES, write_table

    if args.name not in TABLES:
        raise ConfigError(f"--name: unknown table '{args.name}' (known: {', '.join(TABLES)})")
    summary = pd.read_csv(args.summary or paths.summary_path(cfg.results_dir), dtype={"compression": str})
    out = Path(args.out) if args.out else paths.table_path(cfg.results_dir, args.name)
    for line in write_table(summary, args.name, out):
        print(line)
    if args.html:                      # the Snakemake --report's copy, from the cells CSV just written
        from cel.report_doc import table_html

        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(table_html(out.with_suffix(".csv")))
    return 0


def cmd_readme(cfg: ProjectConfig, args) -> int:
    """Snapshot the results the README quotes into docs/results/ and regenerate its blocks."""
    from cel import readme

    snap, doc = Path(args.snapshot), Path(args.readme)
    if args.check:
        if readme.render_readme(doc.read_text(), readme.blocks(snap)) != doc.read_text():
            print(f"cel: {doc} differs from what {snap} generates: run `make readme`", file=sys.stderr)
            return 1
        print(f"{doc} matches {snap}")
        return 0
    if args.profile:        # only this profile's measured time (its results stay out of the results block)
        print(f"wrote {readme.profile_snapshot(cfg.results_dir, snap, args.profile)}")
    else:
        for f in readme.snapshot(cfg.results_dir, snap):
            print(f"wrote {f}")
    print(f"{doc}: {'updated' if readme.update(doc, snap) else 'unchanged'}")
    return 0


def cmd_figure(cfg: ProjectConfig, args) -> int:
    """The progressive (predict-then-train) score of stream runs against interactions seen."""
    from cel.figures import progressive_figure

    runs = {}
    for item in args.run:
        label, sep, run_dir = item.partition("=")
        if not sep:
            raise ConfigError(f"--run: expected LABEL=RUN_DIR, got {item!r}")
        runs[label] = run_dir
    for label, pts in progressive_figure(runs, args.out, args.metric).items():
        print(f"{label}: {len(pts)} points, final progressive {args.metric} {pts['value'].iloc[-1]:.4f} "
              f"after {pts['n'].iloc[-1]} interactions")
    print(f"wrote {args.out}")
    return 0


# ------------------------------------------------------------------------- the table
def _args_figure(sp) -> None:
    sp.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR (repeat)")
    sp.add_argument("--out", required=True)
    sp.add_argument("--metric", default="mse")


def _args_readme(sp) -> None:
    sp.add_argument("--snapshot", default="docs/results", help="folder of the figures the README quotes")
    sp.add_argument("--readme", default="README.md")
    sp.add_argument("--check", action="store_true", help="only check the README against the snapshot")
    sp.add_argument("--profile", choices=("quick",),
                    help="snapshot only this profile's measured time (results/<profile>/wall.json, `make quick`)")


def _args_dataset(sp, variant: bool = False) -> None:
    sp.add_argument("--dataset", required=True)
    if variant:
        sp.add_argument("--variant", required=True)


def _args_train(sp) -> None:
    sp.add_argument("--run", required=True, help="TASK/DATASET/VARIANT/MODEL/METHOD/crC/fK/sS")
    sp.add_argument("--out", help="run folder (default: RESULTS/runs/<run>)")
    sp.add_argument("--threads", type=int, help="torch threads (default: train.threads)")
    sp.add_argument("--mlflow", action="store_true", help="also mirror the run to MLflow")
    sp.add_argument("--params", help="a study's best_params.yaml: the run's parameters (tuned methods)")


def _args_tune(sp, worker: bool = False) -> None:
    sp.add_argument("--study", required=True, help="TASK/DATASET/VARIANT/MODEL/METHOD/crC/fK/sS (S = train.seed)")
    sp.add_argument("--out", required=worker, help="study folder (default: RESULTS/studies/<study>)")
    sp.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    if worker:
        sp.add_argument("--worker", type=int, default=0, help="worker index (seeds its sampler)")
    else:
        sp.add_argument("--workers", type=int, help="worker processes (default: tuning.workers)")


def _args_summarize(sp) -> None:
    sp.add_argument("--out")
    sp.add_argument("--table", help="only the runs this table selects (its filters)")


def _args_table(sp) -> None:
    sp.add_argument("--name", required=True)
    sp.add_argument("--summary")
    sp.add_argument("--out")
    sp.add_argument("--html", help="also render the cells as HTML here (the Snakemake --report's table)")


Handler = Callable[[ProjectConfig, argparse.Namespace], int]
#: name -> (help, argument builder, handler, several profiles allowed)
COMMANDS: dict[str, tuple[str, Callable, Handler, bool]] = {
    "validate": ("validate a profile and list its runs (--dataset: check a csv dataset's file)",
                 lambda sp: sp.add_argument("--dataset", help="check this dataset's file and mapping, run nothing"),
                 cmd_validate, True),
    "fetch": ("fetch and verify a raw archive", _args_dataset, cmd_fetch, True),
    "prepare": ("raw archive -> prepared tables", _args_dataset, cmd_prepare, True),
    "variant": ("prepared tables -> a dataset variant", lambda sp: _args_dataset(sp, True), cmd_variant, True),
    "split": ("a variant -> its CV folds", lambda sp: _args_dataset(sp, True), cmd_split, True),
    "train": ("train one run", _args_train, cmd_train, True),
    "tune": ("run one Optuna study (parallel workers) -> best_params.yaml", _args_tune, cmd_tune, True),
    "tune-worker": ("one worker process of a study (started by `cel tune`)", lambda sp: _args_tune(sp, True),
                    cmd_tune_worker, True),
    "mirror-study": ("mirror a study (parent run) and its trials (nested runs) to MLflow",
                     lambda sp: sp.add_argument("study_dirs", nargs="+"), cmd_mirror_study, False),
    "mirror": ("mirror run folders to MLflow", _args_mirror, cmd_mirror, False),
    "summarize": ("collect the grid's metrics.json into summary.csv",
                  _args_summarize, cmd_summarize, True),
    "table": ("render a LaTeX table (+ cells and claims CSV) from summary.csv", _args_table, cmd_table, True),
    "figure": ("plot the progressive score of stream runs", _args_figure, cmd_figure, True),
    "plot": ("a paper figure (fig3..fig7b, prop1) as PDF, PNG and CSV", _figs.add_args, _figs.run, True),
    "report": ("results/report/report.tex with every table and figure", _report_doc.add_args, _report_doc.run, True),
    "readme": ("snapshot results into docs/results and regenerate the README's numbers", _args_readme,
               cmd_readme, True),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, (help_, add_args, handler, many) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("config", nargs="+" if many else None, help="YAML profile(s)")
        add_args(sp)
        sp.set_defaults(func=handler)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        configs = args.config if isinstance(args.config, list) else [args.config]
        return args.func(load_config(*configs), args)
    except ConfigError as exc:
        print(f"cel: {exc}", file=sys.stderr)
        return 2
    except DataError as exc:     # the data errors carry their own clear message
        print(f"cel: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
