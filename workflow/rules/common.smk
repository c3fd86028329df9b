# Input functions, target lists and wildcard constraints. No rules here.
import os
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from cel import paths
from cel.config import ProjectConfig, config_hash, validate
from cel.runkey import RunKey
from cel.data.sources import SOURCES
from cel.tables import TABLES, table_runs

# Validate once (unknown or ill-typed keys fail here, naming the key) and type the config.
CFG = ProjectConfig.from_dict(validate(config))
RES = str(CFG.results_dir)
ARCH = str(CFG.archives_dir)
# The validated config (with --config overrides and defaults) is what every rule hands to the
# `cel` CLI; it is rewritten only when it changes, so its mtime triggers nothing spuriously.
RESOLVED = f"{RES}/config.resolved.yaml"
_text = yaml.safe_dump(CFG.raw, sort_keys=True)
if not Path(RESOLVED).exists() or Path(RESOLVED).read_text() != _text:
    Path(RESOLVED).parent.mkdir(parents=True, exist_ok=True)
    Path(RESOLVED).write_text(_text)
# Every rule's shell command calls the `cel` console script ([project.scripts]). The bin folder of
# the interpreter running Snakemake goes first on PATH, which the jobs inherit: `.venv/bin/snakemake`
# without an activated venv then runs `.venv/bin/cel`, the installation whose `cel` package this
# file imports. A job with --use-conda activates its environment, which puts that environment's bin
# (and its `cel`) first; a SLURM job inherits this PATH; a Kubernetes pod reads this file again
# with the pod's own interpreter.
_BIN = str(Path(sys.executable).parent)
_PATH = os.environ.get("PATH", os.defpath).split(os.pathsep)
if _PATH[0] != _BIN:
    os.environ.update(PATH=os.pathsep.join([_BIN, *(p for p in _PATH if p != _BIN)]))
# The archives are shared by every profile with the same archives_dir: they are fetched with a
# profile-independent config (datasets named by their source kind), so that running another
# profile never makes Snakemake think the archive's rule changed.
FETCH_CONFIG = f"{ARCH}/fetch.yaml"
_fetch_text = yaml.safe_dump({"archives_dir": ARCH, "data": CFG.raw["data"],
                              "datasets": {k: {"kind": k} for k in sorted(SOURCES)}}, sort_keys=True)
if not Path(FETCH_CONFIG).exists() or Path(FETCH_CONFIG).read_text() != _fetch_text:
    Path(FETCH_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    Path(FETCH_CONFIG).write_text(_fetch_text)
RUNS = CFG.runs()
RUN_INDEX = {r.key: r for r in RUNS}     # run key -> RunKey: O(1) lookups per job
RUN = RunKey.PATTERN
# One Optuna study per tuned (task, dataset, variant, model, method, compression, fold): the run
# pattern without its seed; every seed's final run reads the study's best_params.yaml.
STUDIES = CFG.studies()
STUDY_INDEX = {str(paths.study_dir(RES, k)): k for k in STUDIES}
STUDY = RunKey.PATTERN.rsplit("/", 1)[0]
# Each table is built from its own runs only (`snakemake table6` trains Table 6's runs, nothing else)
TABLE_RUNS = {name: table_runs(TABLES[name], RUNS) for name in CFG.raw["tables"]}
# The MLflow mirror runs in batches, one per table plus one for the runs no table reads: a job per
# run spent ~5 s of CPU on imports alone (131 such jobs were a quarter of the quick profile's CPU
# time). Mirroring is idempotent, so a run that two tables read is mirrored once and found once.
MIRROR_BATCHES = {name: runs for name, runs in TABLE_RUNS.items() if runs}
_TABLED = {r.key for runs in TABLE_RUNS.values() for r in runs}
if any(r.key not in _TABLED for r in RUNS):
    MIRROR_BATCHES["untabled"] = [r for r in RUNS if r.key not in _TABLED]


def _alts(values):
    return "|".join(sorted({str(v).replace(".", r"\.") for v in values})) or "NONE"


wildcard_constraints:
    task=_alts(r.task for r in RUNS),
    seed=r"\d+",
    dataset=_alts(CFG.raw["datasets"]),
    variant=_alts(CFG.raw["variants"]),
    model=_alts(r.model for r in RUNS),
    method=_alts(r.method for r in RUNS),
    compression=_alts(r.compression for r in RUNS),
    fold=r"\d+",
    archive=_alts(s.archive for s in SOURCES.values()),
    table=_alts(TABLES),
    batch=_alts(MIRROR_BATCHES),


def get_archive(wildcards):
    """The prepare rule's raw input: a source's archive, or a csv dataset's own files (so that a
    changed file reprepares the dataset and everything after it)."""
    ds = CFG.dataset(wildcards.dataset)
    if ds["kind"] == "csv":
        return [ds["path"]] + ([ds["items_file"]["path"]] if ds.get("items_file") else [])
    return [f"{ARCH}/{SOURCES[ds['kind']].archive}"] if ds["kind"] in SOURCES else []


def get_source_of_archive(wildcards):
    """The source kind whose archive this is (a dataset of FETCH_CONFIG)."""
    for kind, src in SOURCES.items():
        if src.archive == wildcards.archive:
            return kind
    raise ValueError(f"no source has the archive {wildcards.archive}")


def get_run_inputs(wildcards):
    """The fold's data and, for a tuned method, its study's best_params.yaml (so the DAG records
    where every hyperparameter came from)."""
    vdir = f"{RES}/data/{wildcards.dataset}/{wildcards.variant}"
    out = {"interactions": f"{vdir}/interactions.parquet", "folds": f"{vdir}/folds.parquet"}
    key = RUN_INDEX.get(get_run_key(wildcards))
    if key is not None and CFG.method_tune(key) is not None:
        out["best_params"] = str(paths.study_dir(RES, key) / "best_params.yaml")
    source = (CFG.method_params(key.method, key) if key is not None else {}).get("frozen_from")
    if source:             # Table 11: the clustering learned by that method's run of the same key
        out["frozen_from"] = str(paths.run_dir(RES, replace(key, method=source)) / "metrics.json")
    return out


def get_run_params_arg(wildcards, input):
    return f"--params {input.best_params}" if "best_params" in input.keys() else ""


def get_study_key(wildcards):
    """The study of a study folder (its RunKey carries the tuning seed, train.seed)."""
    study = STUDY.format(**{k: getattr(wildcards, k) for k in
                            ("task", "dataset", "variant", "model", "method", "compression", "fold")})
    d = f"{RES}/studies/{study}"
    if d not in STUDY_INDEX:
        raise ValueError(f"{d}: no grid block tunes this (grid[].tune)")
    return STUDY_INDEX[d].key


def get_study_config_hash(wildcards):
    return config_hash(CFG.resolved_study(RunKey.parse(get_study_key(wildcards))))


def get_all_study_mirrors(wildcards=None):
    return [str(paths.study_dir(RES, k) / "mlflow.json") for k in STUDIES]


def get_table_metrics(wildcards):
    return [str(paths.run_dir(RES, r) / "metrics.json") for r in TABLE_RUNS[wildcards.table]]


def get_dataset_hash(wildcards):
    return config_hash(CFG.dataset(wildcards.dataset))


def get_run_key(wildcards):
    return RunKey.from_mapping(wildcards).key


def get_run_config_hash(wildcards):
    """Hash of everything that determines the run: a change reruns exactly the affected runs."""
    key = RUN_INDEX.get(get_run_key(wildcards)) or RunKey.from_mapping(wildcards)
    return config_hash(CFG.resolved_run(key))


def get_all_metrics(wildcards=None):
    return [str(paths.run_dir(RES, r) / "metrics.json") for r in RUNS]


def get_batch_metrics(wildcards):
    return [str(paths.run_dir(RES, r) / "metrics.json") for r in MIRROR_BATCHES[wildcards.batch]]


def mirror_batch(name):
    return f"{RES}/mlflow/batches/{name}.json"


def get_all_mirrors(wildcards=None):
    return [mirror_batch(b) for b in MIRROR_BATCHES]


def get_final_output():
    """Tables and summary (from metrics.json only) and the MLflow mirror of every run (a sink)."""
    figures = buildable_figures() + [f"{RES}/report/report.tex"] if CFG.raw["figures"] else []   # figure_inputs.smk
    return ([f"{RES}/summary.csv"] + [f"{RES}/tables/{t}.tex" for t in CFG.raw["tables"]]
            + get_all_mirrors() + get_all_study_mirrors() + figures + progressive_figures())
