"""Every output path of the workflow, in one place (used by the Snakefile and by the CLI)."""
from __future__ import annotations

from pathlib import Path

from cel.runkey import RunKey


def prepared_dir(results: Path, dataset: str) -> Path:
    return Path(results) / "data" / dataset / "prepared"


def variant_dir(results: Path, dataset: str, variant: str) -> Path:
    return Path(results) / "data" / dataset / variant


def folds_path(results: Path, dataset: str, variant: str) -> Path:
    return variant_dir(results, dataset, variant) / "folds.parquet"


def run_dir(results: Path, key: RunKey) -> Path:
    return key.path(results)


def mlflow_dir(results: Path) -> Path:
    return Path(results) / "mlflow"


def summary_path(results: Path) -> Path:
    return Path(results) / "summary.csv"


def table_path(results: Path, name: str) -> Path:
    return Path(results) / "tables" / f"{name}.tex"


def study_dir(results: Path, key: RunKey) -> Path:
    """An Optuna study's folder (best_params.yaml, journal, trials/): the run path without its seed,
    since one study per fold serves every seed's final run."""
    return Path(results) / "studies" / key.key.rsplit("/", 1)[0]
