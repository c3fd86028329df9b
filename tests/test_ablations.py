"""Every ablation switch of the paper profile runs end to end on the smoke data."""
import pandas as pd
import pytest
import yaml

from cel.config import load_config
from cel.metrics import adjusted_rand_index
from cel.train.run import execute_run
from conftest import REPO

PAPER = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
ABLATIONS = sorted(n for n, m in PAPER["methods"].items() if m.get("base") == "cel")


def _smoke_profile(tmp_path, methods, compression=10, steps=80, extra=None):
    prof = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    prof["results_dir"] = str(tmp_path / "r")
    prof["methods"] = {m: PAPER["methods"][m] for m in methods} | (extra or {})
    prof["grid"] = [{"datasets": ["synth"], "methods": list(prof["methods"]), "compressions": [compression],
                     "folds": [0]}]
    prof["train"]["steps"] = steps
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(prof))
    return load_config(path)


def test_there_are_ablations():
    assert {"cel_no_split", "random_split", "genre_only", "delta_balanced", "cel_no_grad_avg"} <= set(ABLATIONS)


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_runs_end_to_end(tmp_path, name):
    cfg = _smoke_profile(tmp_path, [name])
    if name == "cel_no_grad_avg":
        # without Eq. (7) the gradient of a cluster is |cluster| times larger: the smoke lr
        # diverges (which is the point of averaging), so this variant gets a smaller one
        from dataclasses import replace

        cfg.train = replace(cfg.train, lr=cfg.train.lr / 50)
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    assert rec["metrics"]["test_mse"] < 5.0
    assert rec["params"]["method"]["base"] == "cel"
    info = rec["clusters"]["item"]
    assert 1 <= info["final_clusters"] <= info["max_clusters"]


def test_genre_only_keeps_rule_based_clustering(tmp_path):
    """Smoke items carry their planted cluster as genre: genre_only must keep exactly it."""
    cfg = _smoke_profile(tmp_path, ["genre_only"], compression=4)   # 8 planted clusters of 200 items
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    learned = pd.read_parquet(tmp_path / "run" / "assignments.parquet").sort_values("entity")["cluster"]
    items = pd.read_parquet(tmp_path / "r" / "data" / "synth" / "original" / "items.parquet").sort_values("item")
    assert adjusted_rand_index(learned, items["cluster"]) == pytest.approx(1.0)
    assert rec["clusters"]["item"]["splits"] == 0 and rec["clusters"]["item"]["reassign_moves"] == []


def test_retrain_with_frozen_clustering(tmp_path):
    """Table 11: retraining with the learned clustering fixed keeps exactly that clustering."""
    cfg = _smoke_profile(tmp_path, [], extra={"cel": {}})
    execute_run(cfg, cfg.runs()[0], tmp_path / "first", log=lambda m: None)
    frozen = str(tmp_path / "first" / "assignments.parquet")
    cfg2 = _smoke_profile(tmp_path, [], extra={"cel_retrain": {"base": "cel", "frozen_assignments": frozen}})
    rec = execute_run(cfg2, cfg2.runs()[0], tmp_path / "second", log=lambda m: None)
    a = pd.read_parquet(frozen)
    b = pd.read_parquet(tmp_path / "second" / "assignments.parquet")
    assert adjusted_rand_index(a["cluster"], b["cluster"]) == pytest.approx(1.0)
    assert rec["clusters"]["item"]["splits"] == 0


def test_user_optimizer_and_lr_are_separate(tmp_path):
    """Tables 13-14: the user side can take its own optimiser and learning rate."""
    cfg = _smoke_profile(tmp_path, [], extra={"cel": {}})
    cfg.raw["train"]["user_optimizer"] = "adam"
    from dataclasses import replace

    cfg.train = replace(cfg.train, user_optimizer="adam", user_lr=0.01)
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    assert rec["params"]["train"]["user_optimizer"] == "adam"


def test_cluster_both_sides(tmp_path):
    cfg = _smoke_profile(tmp_path, [], extra={"cel_both": {"base": "cel", "entities": "both"}})
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    assert set(rec["clusters"]) == {"user", "item"}
    assert rec["metrics"]["user_embedding_params"] < 300 * 8
