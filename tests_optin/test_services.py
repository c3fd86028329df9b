"""Shared stores on PostgreSQL (make test-services; never part of `make test`): the workflow with
MLFLOW_TRACKING_URI = a live `mlflow server` on a PostgreSQL backend and CEL_OPTUNA_STORAGE = the
same PostgreSQL. One tuned study with 4 worker processes, then 8 training jobs (the study's best
parameters, 8 seeds) in parallel, mirrored to MLflow by batch jobs (one per table) beside them:

* every Optuna trial is recorded exactly once (one row per number in PostgreSQL, one trial folder,
  one nested MLflow run per finished trial);
* every metrics.json has exactly one MLflow run and its metrics equal the file's;
* no job failed, none on a lock;
* again with one worker SIGKILLed mid-trial: that trial is failed and retried with its parameters,
  nothing else is lost.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
URI, STORAGE = os.environ.get("MLFLOW_TRACKING_URI", ""), os.environ.get("CEL_OPTUNA_STORAGE", "")
SPACE = {"t1": {"low": 5, "high": 40, "log": True}, "train.lr": {"low": 0.0005, "high": 0.005, "log": True}}

pytestmark = pytest.mark.skipif(not (URI.startswith("http") and STORAGE.startswith("postgresql")),
                                reason="needs scripts/services/start.sh (make test-services)")


def profile(root: Path, name: str, fold: int, steps: int, trials: int = 8) -> Path:
    prof = {
        "results_dir": "results", "archives_dir": str(root / "archives"),
        "datasets": {"synth": {"kind": "synthetic", "users": 120, "items": 80, "clusters": 4, "rank": 3,
                               "density": 0.15, "noise": 0.05, "popularity": 0.5, "seed": 1}},
        "variants": {"original": {"kind": "original"}},
        "split": {"folds": 5, "seed": 0},
        "models": {"nmf": {"rank": 6}},
        "methods": {"cel": {}},
        "train": {"optimizer": "gd", "lr": 0.002, "steps": steps, "eval_every": 10, "log_every": 1000,
                  "val_fraction": 0.1, "patience": 0, "refit": True},
        "tuning": {"trials": trials, "workers": 4, "spaces": {"cel": SPACE}},
        "grid": [{"datasets": ["synth"], "methods": ["cel"], "compressions": [10], "folds": [fold],
                  "seeds": list(range(8)), "tune": {"cel": "cel"}}],
        "tables": ["table7"],
        "mlflow": {"experiment": name},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def start(workdir: Path, config: Path) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [SNAKEMAKE, "all", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "8",
           "--configfile", str(config)]
    return subprocess.Popen(cmd, stdout=open(workdir / "snakemake.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def finish(proc: subprocess.Popen, workdir: Path, timeout=1200) -> str:
    rc = proc.wait(timeout=timeout)
    log = (workdir / "snakemake.log").read_text()
    assert rc == 0, log[-4000:]
    return log


def study_name(fold: int) -> str:
    return f"regression/synth/original/nmf/cel/cr10/f{fold}"


def pg_trials(name: str) -> list[tuple]:
    """(number, state, params json, user attrs) of every trial row of the study, straight from PostgreSQL."""
    import sqlalchemy as sa
    eng = sa.create_engine(STORAGE)
    with eng.connect() as c:
        rows = c.execute(sa.text(
            "SELECT t.number, t.state, t.trial_id FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "WHERE s.study_name = :n ORDER BY t.number"), {"n": name}).fetchall()
        attrs = c.execute(sa.text(
            "SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a JOIN trials t ON t.trial_id = a.trial_id "
            "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :n"), {"n": name}).fetchall()
    ua = {}
    for tid, k, v in attrs:
        ua.setdefault(tid, {})[k] = json.loads(v)
    eng.dispose()
    return [(n, str(s), ua.get(tid, {})) for n, s, tid in rows]


def mlflow_runs(experiment: str, filt: str) -> list:
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=URI)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    return client.search_runs([exp.experiment_id], filter_string=filt, max_results=1000)


def check(workdir: Path, fold: int, experiment: str, log: str) -> dict:
    import optuna
    res = workdir / "results"
    name = study_name(fold)
    sdir = res / "studies" / name
    # Optuna: one row per trial number in PostgreSQL, one trial folder per trial
    rows = pg_trials(name)
    numbers = [r[0] for r in rows]
    assert numbers == list(range(len(rows))), numbers
    dirs = sorted(p.name for p in (sdir / "trials").iterdir())
    assert dirs == [f"t{n:04d}" for n in numbers]
    study = optuna.load_study(study_name=name, storage=STORAGE)
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    budget = yaml.safe_load(open(workdir.parent / f"{experiment}.yaml"))["tuning"]["trials"]
    assert budget <= len(finished) <= budget + 3
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    workers = {t.user_attrs.get("worker") for t in study.trials}
    assert len(workers) >= 2, workers                          # trials ran in parallel worker processes
    # MLflow: exactly one run per metrics.json (final runs and finished trials), equal metrics
    n_runs = 0
    for m in sorted(res.glob("runs/**/metrics.json")):
        rec = json.loads(m.read_text())
        key = str(m.parent.relative_to(res / "runs"))
        found = mlflow_runs(experiment, f"tags.`cel.run_key` = '{key}'")
        assert len(found) == 1, (key, len(found))
        logged = found[0].data.metrics
        for k, v in rec["metrics"].items():
            if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                assert logged[k] == pytest.approx(v, rel=1e-12, abs=1e-12), (key, k)
        n_runs += 1
    assert n_runs == 8
    trial_runs = mlflow_runs(experiment, "tags.`cel.kind` = 'trial'")
    assert sorted(int(r.data.tags["cel.trial"]) for r in trial_runs) == sorted(t.number for t in finished)
    for r in trial_runs:
        rec = json.loads((sdir / "trials" / f"t{int(r.data.tags['cel.trial']):04d}" / "metrics.json").read_text())
        for k, v in rec["metrics"].items():
            if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                assert r.data.metrics[k] == pytest.approx(v, rel=1e-12, abs=1e-12)
    parents = mlflow_runs(experiment, "tags.`cel.kind` = 'study'")
    assert len(parents) == 1
    # no job failed, none on a lock
    logs = log + "".join(p.read_text(errors="replace") for p in (res / "logs").rglob("*.log"))
    for bad in ("Timeout", "database is locked", "could not obtain lock", "deadlock", "Error in rule"):
        assert bad not in logs, bad
    return {"trials_in_postgresql": len(rows), "finished_trials": len(finished),
            "states": {s: sum(1 for r in rows if r[1] == s) for s in sorted({r[1] for r in rows})},
            "worker_processes": len(workers), "final_runs_with_one_mlflow_run": n_runs,
            "trial_mlflow_runs": len(trial_runs), "study_parent_runs": len(parents)}


def save(name: str, data: dict) -> None:
    out = Path(os.environ.get("CEL_OPTIN_OUT", "results/optin"))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"services_{name}.json").write_text(json.dumps(data, indent=1))
    print(name, json.dumps(data))


def test_four_workers_and_eight_parallel_jobs_on_postgresql(tmp_path):
    config = profile(tmp_path, "svc-plain", fold=0, steps=150)
    t0 = time.time()
    log = finish(start(tmp_path / "w", config), tmp_path / "w")
    summary = check(tmp_path / "w", 0, "svc-plain", log)
    summary["wall_s"] = round(time.time() - t0, 1)
    save("plain", summary)


def test_killed_worker_trial_is_retried_and_nothing_else_lost(tmp_path):
    config = profile(tmp_path, "svc-kill", fold=1, steps=1500)
    wd = tmp_path / "w"
    t0 = time.time()
    proc = start(wd, config)
    name = study_name(1)
    victim = None
    deadline = time.time() + 600
    while victim is None:                     # a trial RUNNING in PostgreSQL for a while: kill its worker
        assert time.time() < deadline and proc.poll() is None, "no running trial seen"
        try:
            running = [r for r in pg_trials(name) if r[1] == "RUNNING" and "worker" in r[2]]
        except Exception:
            running = []
        for number, _, attrs in running:
            if (wd / "results/studies" / name / "trials" / f"t{number:04d}").exists():
                time.sleep(1.0)
                pid = int(attrs["worker"].rsplit(":", 1)[1])
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                assert "tune-worker" in cmd and os.readlink(f"/proc/{pid}/cwd") == str(wd), cmd   # ours
                os.kill(pid, signal.SIGKILL)
                victim = (number, pid)
                break
        time.sleep(0.3)
    log = finish(proc, wd)
    summary = check(wd, 1, "svc-kill", log)
    rows = {r[0]: r for r in pg_trials(name)}
    number, pid = victim
    assert rows[number][1] == "FAIL", rows[number]
    assert not (wd / "results/studies" / name / "trials" / f"t{number:04d}" / "metrics.json").exists()
    import optuna
    study = optuna.load_study(study_name=name, storage=STORAGE)
    killed = study.trials[number]
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    fails = [t.number for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert fails == [number], fails                              # nothing else lost
    summary.update({"killed_trial": number, "killed_pid": pid, "retried_as": retries[0].number,
                    "failed_trials": fails, "wall_s": round(time.time() - t0, 1)})
    save("killed_worker", summary)
