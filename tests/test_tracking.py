"""MLflow mirror: idempotent, one active run per metrics.json, survives parallel writers."""
import json
from concurrent.futures import ProcessPoolExecutor

from cel.config import load_config
from cel.runkey import RunKey
from cel.tracking import default_tracking_uri, mirror_run
from cel.train.run import execute_run


def _runs(results, experiment):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(default_tracking_uri(results))
    exp = c.get_experiment_by_name(experiment)
    return c.search_runs([exp.experiment_id]) if exp else []


def test_mirror_is_idempotent_and_replaces_changed_runs(profile_path, tmp_path):
    cfg = load_config(profile_path())
    res = tmp_path / "results"
    spec = RunKey("regression", "synth", "original", "nmf", "full", "100", 0)
    run_dir = tmp_path / "run"
    execute_run(cfg, spec, run_dir, log=lambda m: None)
    rid = mirror_run(run_dir, res, experiment="t")
    assert mirror_run(run_dir, res, experiment="t") == rid
    runs = _runs(res, "t")
    assert len(runs) == 1
    r = runs[0]
    rec = json.loads((run_dir / "metrics.json").read_text())
    assert r.data.metrics["test_mse"] == rec["metrics"]["test_mse"]
    assert r.data.tags["cel.config_hash"] == rec["tags"]["config_hash"]
    assert r.data.params["train.steps"] == "60"
    # a changed metrics.json replaces the run: still exactly one active run for this key
    rec["metrics"]["test_mse"] = 123.0
    (run_dir / "metrics.json").write_text(json.dumps(rec))
    rid2 = mirror_run(run_dir, res, experiment="t")
    runs = _runs(res, "t")
    assert rid2 != rid and len(runs) == 1 and runs[0].data.metrics["test_mse"] == 123.0


def _mirror_one(args):
    run_dir, res = args
    return mirror_run(run_dir, res, experiment="par")


def test_parallel_mirrors_lose_no_run(profile_path, tmp_path):
    cfg = load_config(profile_path())
    res = tmp_path / "results"
    dirs = []
    for fold in range(5):
        spec = RunKey("regression", "synth", "original", "nmf", "full", "100", fold)
        d = tmp_path / f"run{fold}"
        execute_run(cfg, spec, d, log=lambda m: None)
        dirs.append(d)
    jobs = [(d, res) for d in dirs] * 2                      # every run mirrored twice, concurrently
    with ProcessPoolExecutor(4) as pool:
        ids = list(pool.map(_mirror_one, jobs))
    runs = _runs(res, "par")
    assert len(runs) == 5
    assert set(ids) == {r.info.run_id for r in runs}


def test_cli_mirror_batch_records_every_run_and_reruns_to_the_same_ids(profile_path, tmp_path):
    """`cel mirror CONFIG DIR... --record F` (the workflow's per-table batch): one MLflow run per
    folder, the record maps each folder to it, and a second batch with an overlapping folder (a run
    two tables read) finds the same run instead of adding one."""
    from cel.cli import main

    prof = profile_path()
    cfg = load_config(prof)
    dirs = []
    for fold in range(3):
        d = tmp_path / f"run{fold}"
        execute_run(cfg, RunKey("regression", "synth", "original", "nmf", "full", "100", fold), d, log=lambda m: None)
        dirs.append(str(d))
    assert main(["mirror", str(prof), *dirs[:2], "--record", str(tmp_path / "a.json")]) == 0
    assert main(["mirror", str(prof), *dirs[1:], "--record", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert sorted(a["runs"]) == dirs[:2] and sorted(b["runs"]) == dirs[1:]
    assert a["runs"][dirs[1]] == b["runs"][dirs[1]]
    runs = _runs(cfg.results_dir, cfg.raw["mlflow"]["experiment"])
    assert {r.info.run_id for r in runs} == set(a["runs"].values()) | set(b["runs"].values())
    assert len(runs) == 3
