"""One run end to end: outputs, determinism, and a kill halfway that loses nothing."""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from cel.config import load_config
from cel.errors import ConfigError
from cel.runkey import RunKey
from cel.train.run import execute_run
from conftest import tiny_profile

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


def _val_curve(run_dir) -> pd.Series:
    """val_mse by step at every evaluation, from the run's curves.parquet."""
    curves = pd.read_parquet(run_dir / "curves.parquet")
    evals = curves.dropna(subset=["val_mse"])
    return pd.Series(evals["val_mse"].to_numpy(), index=evals["step"].to_numpy())


def test_validation_selects_step_and_stops_early(profile_path, tmp_path):
    """Noisy ratings and a large unregularised model overfit: validation MSE falls, rises, falls
    to a new best and rises again. The selected step is the first argmin of the logged curve, the
    reported model is that step's (its val_mse), and training stops exactly ``patience``
    evaluations after the best (the count restarts at every new best)."""
    synth = tiny_profile(tmp_path)["datasets"]["synth"] | {"noise": 0.8}
    train = {"optimizer": "gd", "lr": 0.01, "steps": 400, "eval_every": 10, "log_every": 1000,
             "val_fraction": 0.2, "patience": 2}
    cfg = load_config(profile_path(train=train, datasets={"synth": synth}, models={"nmf": {"rank": 16, "reg": 0.0}}))
    logs = []
    rec = execute_run(cfg, SPEC, tmp_path / "run", log=logs.append)
    m = rec["metrics"]
    val = _val_curve(tmp_path / "run")
    assert list(val.index) == list(range(10, m["steps"] + 1, 10))         # every eval_every steps
    best = int(val.idxmin())
    assert m["selected_step"] == best
    assert m["val_mse"] == pytest.approx(val[best], rel=1e-9)           # the selected model, not the last
    assert val[m["steps"]] > val[best]
    assert m["steps"] == best + 2 * 10 < 400                            # stopped: patience 2 evaluations
    before = val[val.index < best]
    assert (before.diff().dropna() > 0).any()                          # a worse evaluation before the best:
    assert any("early stop at step %d" % m["steps"] in line for line in logs)   # ... the count restarted


def _metrics_without_timing(rec: dict) -> dict:
    return {k: v for k, v in rec["metrics"].items() if "seconds" not in k}


def test_killed_run_leaves_no_metrics_and_rerun_completes(profile_path, tmp_path):
    """SIGKILL the CLI mid-training: no metrics.json; the same command then resumes from its
    last checkpoint and ends with exactly the metrics and curves of an uninterrupted run."""
    train = {"optimizer": "gd", "lr": 0.0005, "steps": 1500, "eval_every": 50, "log_every": 50,
             "checkpoint_every": 50, "val_fraction": 0.1}
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
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "step 1500/" not in log.read_text()                          # killed halfway
    assert not (out / "metrics.json").exists()
    assert (out / "checkpoint.pt").exists()
    # no temp leftovers but (when the kill hit a checkpoint write) that write's own temp file
    assert not [p for p in out.glob(".*") if not p.name.startswith(".checkpoint.pt.")]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    resumed = re.search(r"resumed from .* at step (\d+)", done.stderr)
    assert resumed and 50 <= int(resumed.group(1)) < 1500, done.stderr   # the last checkpoint
    rerun = json.loads((out / "metrics.json").read_text())
    assert not (out / "checkpoint.pt").exists()
    assert not list(out.glob(".*"))                        # a temp file of a killed checkpoint write is removed
    whole = execute_run(load_config(cfg_path), SPEC, tmp_path / "whole", log=lambda m: None)
    assert rerun["metrics"]["steps"] == 1500
    assert _metrics_without_timing(rerun) == _metrics_without_timing(whole)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "curves.parquet"),
                                  pd.read_parquet(tmp_path / "whole" / "curves.parquet"))


#: methods whose model validation may select at every evaluation (CEL: once at its cluster
#: budget; CERP: once pruned)
ALWAYS_SELECTABLE = {"full", "modulo", "bh", "ae", "qr", "etree", "jnkm", "hashgnn", "prehash"}


@pytest.mark.parametrize("method", sorted(__import__("cel.embeddings", fromlist=["EMBEDDINGS"]).EMBEDDINGS))
def test_every_registered_method_runs_end_to_end(profile_path, tmp_path, method, monkeypatch):
    """The run driver's hooks (fit_data, on_step, test-time evaluation, sizes) for every method:
    the reported size is what the selected model stores at test time, counted from its tensors,
    and the reported model is the one validation selected."""
    import cel.train.run as run_mod
    from test_embeddings import stored_size

    compression = 100 if method == "full" else 10
    params = {"hashgnn": {"pretrain_epochs": 20}, "cerp": {"finalize_at": 20}}.get(method, {})
    train = {"optimizer": "gd", "lr": 0.002, "steps": 60, "eval_every": 10, "log_every": 1000,
             "val_fraction": 0.1}
    # CEL-Lite streams the fold in time order with replay (several passes), the others full batch
    tasks = ({"regression": {"kind": "regression", "feed": {"kind": "replay", "batch_size": 200, "passes": 0}}}
             if method == "cel_lite" else {})
    cfg = load_config(profile_path(methods={method: params}, train=train, tasks=tasks,
                                   grid=[{"datasets": ["synth"], "methods": [method],
                                          "compressions": [compression], "folds": [0]}]))
    seen, fit = {}, run_mod.Trainer.fit

    def watched_fit(self):
        result = fit(self)
        seen["trainer"] = self
        return result

    monkeypatch.setattr(run_mod.Trainer, "fit", watched_fit)
    rec = execute_run(cfg, RunKey("regression", "synth", "original", "nmf", method, str(compression), 0), tmp_path / "run",
                      log=lambda m: None)
    m, tr = rec["metrics"], seen["trainer"]
    assert 0 < m["test_mse"] < 10
    n_items, R = rec["tags"]["n_items"], 6
    rows, index = stored_size(tr.item_emb)
    assert m["item_embedding_rows"] == rows and m["item_embedding_params"] == rows * R + index
    assert m["user_embedding_params"] == 120 * R                        # users stay full
    assert m["item_compression_real"] == pytest.approx(100 * (rows * R + index) / (n_items * R))
    if method not in ("bh", "qr", "full"):
        assert rows <= round(compression / 100 * n_items)               # within M_q
    val = _val_curve(tmp_path / "run")
    s = m["selected_step"]
    assert s in val.index and m["val_mse"] == pytest.approx(val[s], rel=1e-9)   # the selected model is reported
    assert (val[val.index > s] >= val[s]).all()                         # nothing better after it
    if method in ALWAYS_SELECTABLE:
        assert s == int(val.idxmin())
    if method == "cerp":
        assert s >= 20                                  # only the pruned model may be selected


SELECT_TRAIN = {"optimizer": "gd", "lr": 0.002, "steps": 300, "eval_every": 10, "log_every": 1000,
                "val_fraction": 0.2, "patience": 5}


def test_refit_is_the_selected_steps_on_the_whole_training_fold(profile_path, tmp_path):
    """With ``refit`` the reported model is exactly a run on the whole training fold (no
    validation slice) for the selected number of steps; the held-out model's figures stay."""
    overfit = {"datasets": {"synth": tiny_profile(tmp_path)["datasets"]["synth"] | {"noise": 0.8}},
               "models": {"nmf": {"rank": 16, "reg": 0.0}}}
    tr = {**SELECT_TRAIN, "lr": 0.01, "patience": 2}
    cfg = load_config(profile_path(train={**tr, "refit": True}, **overfit))
    rec = execute_run(cfg, SPEC, tmp_path / "refit", log=lambda m: None)
    m = rec["metrics"]
    s = m["selected_step"]
    assert 0 < s < m["steps"] and m["refit_steps"] == s
    assert {"holdout_test_mse", "holdout_train_mse", "val_mse"} <= set(m)
    from cel.data.pipeline import load_fold
    assert rec["tags"]["n_train"] == len(load_fold(cfg, SPEC)[0].train)                       # train + validation slice
    alone = load_config(profile_path(train={**tr, "val_fraction": 0.0, "patience": 0, "steps": s}, **overfit))
    same = execute_run(alone, SPEC, tmp_path / "alone", log=lambda m: None)["metrics"]
    assert m["test_mse"] == same["test_mse"] and m["train_mse"] == same["train_mse"]
    assert m["holdout_test_mse"] != m["test_mse"]


def test_hand_grid_picks_the_best_validation_candidate(profile_path, tmp_path):
    """A block's ``search`` trains each candidate on the validation split of its own fold and keeps
    the best; each candidate's recorded score is what the same run with that value fixed reports."""
    grid = [{"datasets": ["synth"], "methods": ["etree"], "compressions": [10], "folds": [0],
             "search": {"etree": {"lam": [0.001, 10.0, 1000.0]}}}]
    cfg = load_config(profile_path(methods={"etree": {}}, train=SELECT_TRAIN, grid=grid))
    key = dataclasses.replace(SPEC, method="etree", compression="10")
    rec = execute_run(cfg, key, tmp_path / "grid", log=lambda m: None)
    trials = rec["selection"]["candidates"]
    assert [t["params"]["lam"] for t in trials] == [0.001, 10.0, 1000.0]
    scores = [t["val_mse"] for t in trials]
    assert len(set(scores)) == 3                                        # the parameter reaches the model
    best = trials[scores.index(min(scores))]
    assert rec["selection"]["params"] == best["params"] and rec["metrics"]["val_mse"] == best["val_mse"]
    assert rec["metrics"]["selected_step"] == best["selected_step"]
    worst = trials[scores.index(max(scores))]
    fixed = [{**grid[0], "search": {}, "params": {"etree": worst["params"]}}]
    alone = execute_run(load_config(profile_path(methods={"etree": {}}, train=SELECT_TRAIN, grid=fixed)), key,
                        tmp_path / "alone", log=lambda m: None)
    assert alone["metrics"]["val_mse"] == worst["val_mse"]


def test_hand_grid_needs_a_validation_slice(profile_path):
    grid = [{"datasets": ["synth"], "methods": ["etree"], "compressions": [10], "search": {"etree": {"lam": [1.0]}}}]
    with pytest.raises(ConfigError, match=r"grid\.search\.etree"):
        load_config(profile_path(methods={"etree": {}}, grid=grid))


@pytest.mark.parametrize("method, compression", [("full", "100"), ("cel", "10"), ("etree", "10")])
def test_blind_to_test_labels(profile_path, tmp_path, monkeypatch, method, compression):
    """The blindness test (issue #10): the same run with the test labels replaced by noise selects
    the same step, logs the same validation curve and ends with the same model; only test metrics
    move. A selection that peeked at test data would fail here."""
    import numpy as np

    import cel.train.run as run_mod

    cfg = load_config(profile_path(
        methods={"full": {}, "cel": {"split_threshold": 0}, "etree": {}},
        train={**SELECT_TRAIN, "refit": True},
        grid=[{"datasets": ["synth"], "methods": [method], "compressions": [int(compression)], "folds": [0],
               "search": {"etree": {"lam": [0.01, 1.0, 100.0]}}}]))
    key = dataclasses.replace(SPEC, method=method, compression=compression)
    honest = execute_run(cfg, key, tmp_path / "honest", log=lambda m: None)
    real_load = run_mod.load_fold

    def noisy_test(cfg_, key_):
        fold, sha = real_load(cfg_, key_)
        rng = np.random.default_rng(123)
        fold.test = fold.test.assign(rating=rng.uniform(-50, 50, len(fold.test)))
        return fold, sha

    monkeypatch.setattr(run_mod, "load_fold", noisy_test)
    blind = execute_run(cfg, key, tmp_path / "blind", log=lambda m: None)
    a, b = honest["metrics"], blind["metrics"]
    assert a["test_mse"] != b["test_mse"]                              # the noise reached the test set
    assert a["selected_step"] == b["selected_step"] and a["steps"] == b["steps"]
    assert honest["selection"] == blind["selection"]                  # same candidates, scores, choice
    test_keys = ("test_", "holdout_test_")
    assert {k: v for k, v in a.items() if not k.startswith(test_keys)} == \
           {k: v for k, v in b.items() if not k.startswith(test_keys)}
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "honest" / "curves.parquet"),
                                  pd.read_parquet(tmp_path / "blind" / "curves.parquet"))
    assert not any(c.startswith("test_") for c in pd.read_parquet(tmp_path / "blind" / "curves.parquet"))


def test_a_diverging_candidate_of_a_grid_loses(profile_path, tmp_path):
    """A hand-grid candidate whose loss overflows (lr far too high) is recorded as diverged and
    the others compete; a run whose only candidate diverges is an error."""
    from cel.config import load_config
    from cel.train.run import execute_run

    path = profile_path(grid=[{"datasets": ["synth"], "methods": ["full"], "compressions": [100], "folds": [0],
                               "search": {"full": {"train.lr": [0.002, 1.0e12]}}}],
                        train={"optimizer": "gd", "lr": 0.002, "steps": 40, "eval_every": 10, "log_every": 1000,
                               "val_fraction": 0.1})
    cfg = load_config(path)
    for args in (["prepare", "--dataset", "synth"], ["variant", "--dataset", "synth", "--variant", "original"],
                 ["split", "--dataset", "synth", "--variant", "original"]):
        from cel.cli import main
        assert main([args[0], str(path), *args[1:]]) == 0
    key = cfg.runs()[0]
    rec = execute_run(cfg, key, tmp_path / "run")
    assert rec["selection"]["params"] == {"train.lr": 0.002}
    assert [c.get("diverged") is not None for c in rec["selection"]["candidates"]] == [False, True]
    import pytest as _pytest

    cfg_one = load_config(profile_path(grid=[{"datasets": ["synth"], "methods": ["full"], "compressions": [100],
                                              "folds": [0], "search": {"full": {"train.lr": [1.0e12]}}}],
                                       train={"optimizer": "gd", "lr": 0.002, "steps": 40, "eval_every": 10,
                                              "log_every": 1000, "val_fraction": 0.1}))
    with _pytest.raises(FloatingPointError):
        execute_run(cfg_one, cfg_one.runs()[0], tmp_path / "run1")
