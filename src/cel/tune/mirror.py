"""A study in MLflow: one parent run (tag ``cel.study``, best value and parameters) and one
nested run per finished trial (its own metrics.json, tags ``cel.study`` and ``cel.trial``).

Written from the study's folder after the study ends, by one process under the mirror's file
lock, so parallel workers never write to the tracking store. Idempotent like every mirror:
the parent is found by its ``cel.study_key`` tag; a trial by its ``cel.run_key`` (study/tNNNN).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import yaml

from cel.io import write_json
from cel.tracking import _lock_for, experiment_id, mirror_run, resolve_tracking_uri


def mirror_study(study_dir: str | Path, results_dir: str | Path, tracking_uri: str | None = None,
                 experiment: str = "cel") -> dict:
    from mlflow.tracking import MlflowClient

    study_dir = Path(study_dir)
    best = yaml.safe_load((study_dir / "best_params.yaml").read_text())
    name = best["study"]
    uri = resolve_tracking_uri(tracking_uri, results_dir)
    with _lock_for(uri, results_dir):
        client = MlflowClient(tracking_uri=uri)
        exp_id = experiment_id(client, experiment, uri, results_dir)
        digest = hashlib.sha256((study_dir / "best_params.yaml").read_bytes()).hexdigest()
        found = client.search_runs([exp_id], filter_string=f"tags.`cel.study_key` = '{name}'")
        same = [r for r in found if r.data.tags.get("cel.best_sha256") == digest]
        if same:
            pid = same[0].info.run_id
        else:
            # the study reran: its parent and its trials' runs are replaced
            stale = client.search_runs([exp_id], filter_string=f"tags.`cel.study` = '{name}'")
            for old in {r.info.run_id for r in [*found, *stale]}:
                client.delete_run(old)
            pid = _create_parent(client, exp_id, name, best, digest, study_dir)
    trials = {}
    for mfile in sorted(study_dir.glob("trials/t*/metrics.json")):
        number = json.loads(mfile.read_text())["trial"]
        trials[number] = mirror_run(mfile.parent, results_dir, tracking_uri, experiment,
                                    run_key=f"{name}/t{number:04d}",
                                    extra_tags={"mlflow.parentRunId": pid, "cel.study": name,
                                                "cel.trial": number, "cel.kind": "trial"})
    out = {"parent_run_id": pid, "trials": trials, "tracking_uri": uri}
    write_json(study_dir / "mlflow.json", out)
    return out


def _create_parent(client, exp_id: str, name: str, best: dict, digest: str, study_dir: Path) -> str:
    from mlflow.entities import Metric, Param, RunTag

    pid, now = client.create_run(exp_id, run_name=f"study {name}").info.run_id, int(time.time() * 1000)
    client.log_batch(pid, metrics=[Metric("best_value", float(best["best_value"]), now, 0),
                                   Metric("best_trial", float(best["best_trial"]), now, 0),
                                   *(Metric(f"trials_{k}", float(v), now, 0) for k, v in best["trials"].items())],
                     params=[Param(f"best.{k}", str(v)) for k, v in best["params"].items()],
                     tags=[RunTag("cel.study_key", name), RunTag("cel.study", name), RunTag("cel.kind", "study"),
                           RunTag("cel.direction", best["direction"]), RunTag("cel.best_sha256", digest)])
    client.log_artifact(pid, str(study_dir / "best_params.yaml"))
    client.set_terminated(pid, "FINISHED")
    return pid
