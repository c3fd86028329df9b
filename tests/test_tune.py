"""Optuna tuning (issue 13): parallel workers lose and duplicate no trial, failed and killed
trials are retried, pruning prunes, best_params.yaml feeds the final runs through the DAG, and the
studies reach MLflow as parent runs with nested trials (read back through a live server's REST API)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

from cel.config import load_config
from cel.errors import ConfigError
from cel.runkey import RunKey
from cel.tune import study as study_mod
from cel.tune.space import check_space, suggest
from conftest import REPO, tiny_profile

STUDY = "regression/synth/original/nmf/cel/cr10/f0/s0"
SPACE = {"t1": {"low": 5, "high": 40, "log": True}, "delta": {"choices": ["zero", "median"]},
         "train.lr": {"low": 0.0005, "high": 0.005, "log": True}}
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def tune_profile(tmp_path, trials=4, space=None, **train):
    prof = tiny_profile(tmp_path, methods={"full": {}, "cel": {}})
    prof["train"].update({"val_fraction": 0.1, "patience": 3, "refit": True, **train})
    prof["tuning"] = {"trials": trials, "spaces": {"cel": space or SPACE}}
    prof["grid"] = [{"datasets": ["synth"], "methods": ["cel"], "compressions": [10], "folds": [0],
                     "seeds": [0, 1], "tune": {"cel": "cel"}}]
    prof["tables"] = ["table7"]
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def prepared(path):
    for args in (["prepare", "--dataset", "synth"], ["variant", "--dataset", "synth", "--variant", "original"],
                 ["split", "--dataset", "synth", "--variant", "original"]):
        subprocess.run([sys.executable, "-m", "cel.cli", args[0], str(path), *args[1:]], check=True, env=ENV,
                       capture_output=True)
    return load_config(path)


def study_dir(tmp_path):
    return tmp_path / "results" / "studies" / STUDY.rsplit("/", 1)[0]


def test_space_checks_and_suggestions():
    with pytest.raises(ConfigError, match="t1"):
        check_space({"t1": {"low": 10, "high": 5}}, "tuning.spaces.cel")
    with pytest.raises(ConfigError, match="log range"):
        check_space({"train.lr": {"low": 0.0, "high": 1.0, "log": True}}, "s")
    with pytest.raises(ConfigError, match="choices and a range"):
        check_space({"delta": {"choices": ["zero"], "low": 1}}, "s")
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    point = suggest(trial, SPACE)
    assert isinstance(point["t1"], int) and 5 <= point["t1"] <= 40
    assert isinstance(point["train.lr"], float) and point["delta"] in ("zero", "median")


def test_config_rejects_unknown_space_and_tuning_without_validation(tmp_path):
    path = tune_profile(tmp_path)
    prof = yaml.safe_load(path.read_text())
    prof["grid"][0]["tune"] = {"cel": "nope"}
    path.write_text(yaml.safe_dump(prof))
    with pytest.raises(ConfigError, match="grid.tune.cel"):
        load_config(path)
    prof["grid"][0]["tune"] = {"cel": "cel"}
    prof["train"]["val_fraction"] = 0.0
    path.write_text(yaml.safe_dump(prof))
    with pytest.raises(ConfigError, match="validation"):
        load_config(path)


@pytest.mark.slow
def test_four_workers_lose_and_duplicate_no_trial(tmp_path):
    cfg = prepared(tune_profile(tmp_path, trials=8))
    rec = study_mod.tune(cfg, RunKey.parse(STUDY), [str(tmp_path / "tune.yaml")], study_dir(tmp_path), workers=4)
    study = optuna.load_study(study_name=rec["study"], storage=study_mod.storage_for(cfg, study_dir(tmp_path)))
    finished = [t for t in study.trials if t.state in study_mod.FINISHED]
    assert len(finished) >= 8 and len(study.trials) <= 8 + 3          # at most one overshoot per extra worker
    assert len({t.number for t in study.trials}) == len(study.trials)
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) >= 2                                            # trials really ran in parallel processes
    dirs = sorted(p.name for p in (study_dir(tmp_path) / "trials").iterdir())
    assert dirs == [f"t{t.number:04d}" for t in sorted(study.trials, key=lambda t: t.number)]
    for t in study.trials:
        m = json.loads((study_dir(tmp_path) / "trials" / f"t{t.number:04d}" / "metrics.json").read_text())
        assert m["trial"] == t.number and m["selection"]["params"] == t.params
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert m["metrics"]["val_mse"] == pytest.approx(t.value)
    best = yaml.safe_load((study_dir(tmp_path) / "best_params.yaml").read_text())
    assert best["params"] == study.best_params and best["best_value"] == pytest.approx(study.best_value)


def test_failed_trial_is_retried_with_its_parameters(tmp_path, monkeypatch):
    cfg = prepared(tune_profile(tmp_path, trials=3))
    from cel.tune import objective

    calls = {"n": 0}
    real = objective.Objective.__call__

    def flaky(self, trial):
        calls["n"] += 1
        if calls["n"] == 1:
            suggest(trial, self.space)                # the crash comes after the parameters are drawn
            raise RuntimeError("simulated crash inside a trial")
        return real(self, trial)

    monkeypatch.setattr(objective.Objective, "__call__", flaky)
    study_mod.run_worker(cfg, RunKey.parse(STUDY), study_dir(tmp_path), worker=0)
    study = study_mod.open_study(cfg, RunKey.parse(STUDY), study_dir(tmp_path))
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1
    retry = [t for t in study.trials if t.user_attrs.get(study_mod.RETRY_ATTR) == failed[0].number]
    assert len(retry) == 1 and retry[0].params == failed[0].params
    assert retry[0].state == optuna.trial.TrialState.COMPLETE
    assert len([t for t in study.trials if t.state in study_mod.FINISHED]) == 3


@pytest.mark.slow
def test_killed_worker_trial_is_failed_and_retried(tmp_path):
    path = tune_profile(tmp_path, trials=2, steps=4000, patience=0)
    cfg = prepared(path)
    sd = study_dir(tmp_path)
    worker = subprocess.Popen([sys.executable, "-m", "cel.cli", "tune-worker", str(path), "--study", STUDY,
                               "--out", str(sd)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.time() + 120
    while not (sd / "trials" / "t0000").exists():
        assert time.time() < deadline and worker.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(worker.pid, signal.SIGKILL)                    # mid-trial: no metrics.json yet
    worker.wait()
    assert not (sd / "trials" / "t0000" / "metrics.json").exists()
    study_mod.tune(cfg, RunKey.parse(STUDY), [str(path)], sd, workers=1)
    study = study_mod.open_study(cfg, RunKey.parse(STUDY), sd)
    t0 = study.trials[0]
    assert t0.state == optuna.trial.TrialState.FAIL
    retry = [t for t in study.trials if t.user_attrs.get(study_mod.RETRY_ATTR) == 0]
    assert len(retry) == 1 and retry[0].params == t0.params and retry[0].state in study_mod.FINISHED
    assert len([t for t in study.trials if t.state in study_mod.FINISHED]) == 2


def test_pruner_stops_hopeless_trials(tmp_path):
    space = {"train.lr": {"choices": [0.003, 1e-7]}}
    path = tune_profile(tmp_path, trials=6, space=space, steps=200, eval_every=10, patience=0)
    prof = yaml.safe_load(path.read_text())
    prof["tuning"].update({"startup_trials": 0, "pruner": {"kind": "median", "startup_trials": 1, "warmup_evals": 1}})
    path.write_text(yaml.safe_dump(prof))
    cfg = prepared(path)
    study = study_mod.open_study(cfg, RunKey.parse(STUDY), study_dir(tmp_path))
    for lr in (0.003, 0.003, 1e-7, 1e-7):          # a good curve first, then hopeless ones
        study.enqueue_trial({"train.lr": lr})
    study_mod.run_worker(cfg, RunKey.parse(STUDY), study_dir(tmp_path), worker=0)
    study = study_mod.open_study(cfg, RunKey.parse(STUDY), study_dir(tmp_path))
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and all(t.params["train.lr"] == 1e-7 for t in pruned)
    assert study.best_params["train.lr"] == 0.003
    assert max(max(t.intermediate_values) for t in pruned) < max(max(t.intermediate_values) for t in complete)
    m = json.loads((study_dir(tmp_path) / "trials" / f"t{pruned[0].number:04d}" / "metrics.json").read_text())
    assert m["state"] == "pruned"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rest(port, endpoint, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


@pytest.mark.slow
def test_workflow_tunes_then_trains_every_seed_and_mlflow_server_shows_studies(tmp_path):
    path = tune_profile(tmp_path, trials=3)
    cmd = [str(SNAKEMAKE), "all", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
           "--configfile", str(path)]
    dag = subprocess.run([*cmd[:-2], "--dag", "--configfile", str(path)], capture_output=True, text=True, env=ENV)
    assert "tune_study" in dag.stdout and "train_run" in dag.stdout
    labels = {line.split("[")[0].strip(): line for line in dag.stdout.splitlines() if "label" in line}
    tune_id = next(k for k, v in labels.items() if "tune_study" in v)
    train_ids = [k for k, v in labels.items() if "train_run" in v]
    assert all(f"{tune_id} -> {t}" in dag.stdout for t in train_ids)     # best_params.yaml feeds every seed
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = tmp_path / "results"
    best = yaml.safe_load((study_dir(tmp_path) / "best_params.yaml").read_text())
    for seed in (0, 1):
        m = json.loads((res / "runs" / STUDY[:-2] / f"s{seed}" / "metrics.json").read_text())
        assert m["selection"]["params"] == best["params"]
        assert m["params"]["train"]["lr"] == pytest.approx(best["params"]["train.lr"])
    # rerun by target: nothing to do when finished; a changed method reruns only its own runs
    r = subprocess.run([cmd[0], "table7", *cmd[2:], "-n"], capture_output=True, text=True, env=ENV)
    assert "Nothing to be done" in r.stdout + r.stderr
    prof = yaml.safe_load(path.read_text())
    prof["grid"].append({"datasets": ["synth"], "methods": ["full"], "compressions": [100], "folds": [0]})
    path.write_text(yaml.safe_dump(prof))
    assert subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900).returncode == 0
    prof["methods"]["full"] = {"init_scale": "vector"}
    path.write_text(yaml.safe_dump(prof))
    r = subprocess.run([cmd[0], "table7", *cmd[2:], "-n"], capture_output=True, text=True, env=ENV)
    jobs = [line.split()[-1] for line in (r.stdout + r.stderr).splitlines() if line.startswith("rule ")
            or line.startswith("localrule ")]
    assert jobs.count("train_run:") == 1 and "tune_study:" not in jobs       # the full run only
    assert "runs/regression/synth/original/nmf/full/cr100/f0/s0/metrics.json" in r.stdout + r.stderr
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                               f"sqlite:///{res / 'mlflow' / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except Exception:
                assert time.time() < deadline and server.poll() is None, "mlflow server did not start"
                time.sleep(0.5)
        req = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=test",
                                     timeout=30)
        exp = json.loads(req.read())["experiment"]["experiment_id"]
        parents = _rest(port, "runs/search", {"experiment_ids": [exp], "filter": "tags.`cel.kind` = 'study'"})["runs"]
        assert len(parents) == 1
        pid = parents[0]["info"]["run_id"]
        metrics = {m["key"]: m["value"] for m in parents[0]["data"]["metrics"]}
        assert metrics["best_value"] == pytest.approx(best["best_value"])
        trials = _rest(port, "runs/search", {"experiment_ids": [exp], "filter": "tags.`cel.kind` = 'trial'"})["runs"]
        assert len(trials) == sum(best["trials"][s] for s in ("complete", "pruned"))
        assert all({t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.parentRunId"] == pid for run in trials)
        finals = _rest(port, "runs/search", {"experiment_ids": [exp], "filter": "tags.`cel.run.method` = 'cel'"})["runs"]
        assert len([f for f in finals if "cel.trial" not in {t["key"] for t in f["data"]["tags"]}]) == 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
