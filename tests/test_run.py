"""One run end to end: outputs, determinism, and a kill halfway that loses nothing."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from cel.config import load_config
from cel.runkey import RunKey
from cel.train.run import execute_run

SPEC = RunKey("regression", "synth", "original", "nmf", "full", "100", 0)


def test_run_writes_metrics_and_learns(profile_path, tmp_path):
    cfg = load_config(profile_path())
    rec = execute_run(cfg, SPEC, tmp_path / "run", log=lambda m: None)
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["metrics"] == rec["metrics"]
    m = rec["metrics"]
    for key in ("test_mse", "train_mse", "embedding_params", "steps"):
        assert key in m
    assert "wall_seconds" in rec["timing"]
    assert m["embedding_params"] == (120 + 80) * 6
    assert m["steps"] == 60
    assert m["train_mse"] < 1.0                       # learned something (ratings ~3 ± 1)
    for tag in ("git_commit", "config_hash", "data_sha256"):
        assert rec["tags"][tag]
    assert (tmp_path / "run" / "config.yaml").exists() and (tmp_path / "run" / "curves.parquet").exists()


def test_fixed_seed_gives_identical_metrics(profile_path, tmp_path):
    cfg = load_config(profile_path())
    a = execute_run(cfg, SPEC, tmp_path / "a", log=lambda m: None)
    b = execute_run(cfg, SPEC, tmp_path / "b", log=lambda m: None)
    assert a["metrics"] == b["metrics"]
    assert a["tags"]["config_hash"] == b["tags"]["config_hash"]
    c = execute_run(cfg, dataclasses.replace(SPEC, seed=1), tmp_path / "c", log=lambda m: None)
    assert c["metrics"]["test_mse"] != a["metrics"]["test_mse"]


def test_validation_selects_step_and_stops_early(profile_path, tmp_path):
    train = {"optimizer": "gd", "lr": 0.002, "steps": 400, "eval_every": 10, "log_every": 1000,
             "val_fraction": 0.2, "patience": 2}
    cfg = load_config(profile_path(train=train))
    rec = execute_run(cfg, SPEC, tmp_path / "run", log=lambda m: None)
    m = rec["metrics"]
    assert "val_mse" in m
    assert m["selected_step"] <= m["steps"] <= 400
    assert m["selected_step"] % 10 == 0


def test_killed_run_leaves_no_metrics_and_rerun_completes(profile_path, tmp_path):
    """SIGKILL the CLI mid-training: no metrics.json; the same command then completes it."""
    train = {"optimizer": "gd", "lr": 0.0005, "steps": 100000, "eval_every": 50, "log_every": 50}
    cfg_path = profile_path(train=train)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cel.cli", "train", str(cfg_path), "--run", SPEC.key, "--out", str(out)]
    log = tmp_path / "log.txt"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while "step 100/" not in log.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.time() < deadline, "training never started"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists()
    assert not [p for p in out.glob(".*")] if out.exists() else True   # no temp leftovers
    short = yaml.safe_load(cfg_path.read_text())
    short["train"]["steps"] = 30
    cfg_path.write_text(yaml.safe_dump(short))
    subprocess.run(cmd, check=True, capture_output=True)
    assert json.loads((out / "metrics.json").read_text())["metrics"]["steps"] == 30


@pytest.mark.parametrize("method", sorted(__import__("cel.embeddings", fromlist=["EMBEDDINGS"]).EMBEDDINGS))
def test_every_registered_method_runs_end_to_end(profile_path, tmp_path, method):
    """The run driver's hooks (fit_data, on_step, test-time evaluation, sizes) for every method."""
    compression = 100 if method == "full" else 10
    params = {"hashgnn": {"pretrain_epochs": 20}, "cerp": {"finalize_at": 20}}.get(method, {})
    train = {"optimizer": "gd", "lr": 0.002, "steps": 60, "eval_every": 10, "log_every": 1000,
             "val_fraction": 0.1}
    cfg = load_config(profile_path(methods={method: params}, train=train,
                                   grid=[{"datasets": ["synth"], "methods": [method],
                                          "compressions": [compression], "folds": [0]}]))
    rec = execute_run(cfg, RunKey("regression", "synth", "original", "nmf", method, str(compression), 0), tmp_path / "run",
                      log=lambda m: None)
    m = rec["metrics"]
    assert 0 < m["test_mse"] < 10 and m["val_mse"] > 0
    assert m["item_embedding_params"] == pytest.approx(m["item_compression_real"] / 100 * rec["tags"]["n_items"] * 6)
    assert m["selected_step"] <= m["steps"]
    if method == "cerp":
        assert m["selected_step"] >= 20                 # only the pruned model may be selected
