"""MLflow mirror of ``metrics.json`` (which stays the source of truth).

Safe for parallel jobs: every write to the store happens under an inter-process file lock
(sqlite allows one writer; concurrent schema creation is a known race), and mirroring is
idempotent: a run folder maps to exactly one active MLflow run, found by its ``cel.run_key``
tag. Re-mirroring an unchanged ``metrics.json`` does nothing; a changed one replaces the run.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pandas as pd
from filelock import FileLock

from cel.io import write_json
from cel.runkey import RunKey


def default_tracking_uri(results_dir: str | Path) -> str:
    db = (Path(results_dir) / "mlflow" / "mlflow.db").resolve()
    return f"sqlite:///{db}"


def resolve_tracking_uri(configured: str | None, results_dir: str | Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or configured or default_tracking_uri(results_dir)


def _lock_for(uri: str, results_dir: str | Path) -> FileLock:
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):]).with_suffix(".lock")
    else:
        path = Path(results_dir) / "mlflow" / ".mirror.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=900)


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)[:6000]
    return out


def experiment_id(client, experiment: str, uri: str, results_dir: str | Path) -> str:
    """The experiment's id, created (artifacts under results/mlflow/artifacts for sqlite) if new."""
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    art = (Path(results_dir) / "mlflow" / "artifacts").resolve() if uri.startswith("sqlite") else None
    return client.create_experiment(experiment, artifact_location=art.as_uri() if art else None)


def mirror_run(run_dir: str | Path, results_dir: str | Path, tracking_uri: str | None = None,
               experiment: str = "cel", *, run_key: str | None = None, extra_tags: dict | None = None) -> str:
    """Log one run folder to MLflow; return the MLflow run id (also written to ``mlflow.json``).
    ``run_key``: the identity tag (default: the record's RunKey; a trial passes study/trial);
    ``extra_tags``: e.g. ``mlflow.parentRunId`` to nest a trial under its study."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    run_dir = Path(run_dir)
    record = json.loads((run_dir / "metrics.json").read_text())
    digest = hashlib.sha256((run_dir / "metrics.json").read_bytes()).hexdigest()
    r = record["run"]
    run_key = run_key or RunKey.from_mapping(r).key
    uri = resolve_tracking_uri(tracking_uri, results_dir)
    with _lock_for(uri, results_dir):
        client = MlflowClient(tracking_uri=uri)
        exp_id = experiment_id(client, experiment, uri, results_dir)
        found = client.search_runs([exp_id], filter_string=f"tags.`cel.run_key` = '{run_key}'")
        for old in found:
            if old.data.tags.get("cel.metrics_sha256") == digest:
                write_json(run_dir / "mlflow.json", {"run_id": old.info.run_id, "tracking_uri": uri})
                return old.info.run_id
        for old in found:              # metrics.json changed: the new run replaces the old one
            client.delete_run(old.info.run_id)
        run = client.create_run(exp_id, run_name=run_key)
        rid = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, v) for k, v in _flatten(record["params"]).items()]
        tags = [RunTag(f"cel.{k}", str(v)) for k, v in record["tags"].items()]
        tags += [RunTag("cel.run_key", run_key), RunTag("cel.metrics_sha256", digest),
                 RunTag("mlflow.source.git.commit", record["tags"]["git_commit"])]
        tags += [RunTag(f"cel.run.{k}", str(v)) for k, v in r.items()]
        tags += [RunTag(k, str(v)) for k, v in (extra_tags or {}).items()]
        metrics = [Metric(k, float(v), now, 0) for k, v in {**record["metrics"], **record.get("timing", {})}.items()
                   if isinstance(v, (int, float))]
        curves_path = run_dir / "curves.parquet"
        if curves_path.exists():
            curves = pd.read_parquet(curves_path)
            for col in curves.columns.drop("step"):
                sub = curves[["step", col]].dropna()
                metrics += [Metric(f"curve.{col}", float(v), now, int(s)) for s, v in zip(sub["step"], sub[col])]
        for i in range(0, len(params), 100):
            client.log_batch(rid, params=params[i:i + 100])
        client.log_batch(rid, tags=tags)
        for i in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[i:i + 1000])
        for name in ("config.yaml", "metrics.json"):
            client.log_artifact(rid, str(run_dir / name))
        client.set_terminated(rid, "FINISHED")
    write_json(run_dir / "mlflow.json", {"run_id": rid, "tracking_uri": uri})
    return rid
