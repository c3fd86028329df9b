"""The online conversion protocol (issue #12, Table 3): chronological split, validation by time,
both sides compressed, AUC over seen users and items, the refit's passes, and Table 3's claims
paired by seed."""
import numpy as np
import pandas as pd
import pytest

from cel import paths
from cel.config import load_config
from cel.data.chrono import chrono_assignment, chrono_holdout
from cel.data.pipeline import load_fold, run_prepare
from cel.embeddings.modulo import ModuloEmbedding
from cel.runkey import RunKey
from cel.tables import TABLES, cell_stats, check_claims, render
from cel.train.run import build, execute_run, load, seen_in_training
from conftest import tiny_profile


def test_chrono_assignment_tests_the_latest_fifth_with_stable_ties():
    ts = np.array([5, 1, 9, 9, 3, 7, 9, 2, 8, 4])
    fold = chrono_assignment(ts, 0.2)
    assert fold.dtype == np.int8 and (fold == 0).sum() == 2
    # the two latest: timestamps 9, 9, 9 tie; the stable order keeps the later rows (3, 6) last
    assert set(np.flatnonzero(fold == 0)) == {3, 6}
    assert ts[fold == 1].max() <= ts[fold == 0].min()
    with pytest.raises(ValueError):
        chrono_assignment(ts, 1.0)


def test_chrono_holdout_is_the_last_tenth_of_the_training_part():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 5, 50), "item": rng.integers(0, 5, 50),
                          "rating": rng.integers(1, 6, 50).astype(float), "timestamp": rng.permutation(50)})
    train, val = chrono_holdout(frame, 0.1)
    assert len(val) == 5 and len(train) == 45
    assert sorted(val["timestamp"]) == [45, 46, 47, 48, 49]
    assert train["timestamp"].max() < val["timestamp"].min()
    assert chrono_holdout(frame, 0.0)[1].empty


def _profile(tmp_path, **over):
    prof = tiny_profile(tmp_path)
    prof["variants"] = {"online": {"kind": "original", "split": "chrono", "test_fraction": 0.2}}
    prof["models"] = {"deepfm": {"rank": 4, "reg": 0.0, "nonneg": "none", "side_features": []},
                      "din": {"rank": 4, "reg": 0.0, "nonneg": "none", "history": 5}}
    prof["methods"] = {"full": {}, "modulo": {}, "cel_lite": {"m": 3, "t1": 1}}
    prof["tasks"] = {"conversion": {"kind": "conversion", "threshold": 3.5, "compress": "both",
                                    "feed": {"kind": "replay", "batch_size": 64, "buffer": 5, "passes": 1,
                                             "loss": "mean"},
                                    "train": {"optimizer": "adam", "lr": 0.01, "steps": 10000, "eval_every": 5,
                                              "val_fraction": 0.1, "refit": True, "patience": 0}}}
    prof["grid"] = [{"tasks": ["conversion"], "datasets": ["synth"], "variants": ["online"],
                     "models": ["deepfm"], "methods": ["modulo"], "compressions": [10], "folds": [0]}]
    prof.update(over)
    return prof


def _cfg(tmp_path, **over):
    """The profile, with the synthetic data's timestamps shuffled (the generator numbers its rows
    user by user, so time order would be user order: the latest users would never be trained)."""
    import yaml
    p = tmp_path / "conv.yaml"
    p.write_text(yaml.safe_dump(_profile(tmp_path, **over)))
    cfg = load_config(p)
    prepared = paths.prepared_dir(cfg.results_dir, "synth") / "interactions.parquet"
    if not prepared.exists():
        run_prepare(cfg, "synth")
        inter = pd.read_parquet(prepared)
        inter["timestamp"] = np.random.default_rng(5).permutation(len(inter))
        inter.to_parquet(prepared)
    return cfg


KEY = RunKey("conversion", "synth", "online", "deepfm", "modulo", "10", 0)


def test_chronological_fold_and_time_ordered_validation(tmp_path):
    cfg = _cfg(tmp_path)
    fold, _ = load_fold(cfg, KEY)
    n = len(fold.train) + len(fold.test)
    assert len(fold.test) == round(0.2 * n)
    assert fold.train["timestamp"].max() <= fold.test["timestamp"].min()
    d = load(cfg, KEY)
    val_ts = d.tables["val"].timestamps
    assert len(d.tables["val"]) == round(0.1 * len(fold.train))
    assert d.train["timestamp"].max() <= int(val_ts.min())          # validation = the latest 10% of training
    # the test AUC's rows: only users and items that occur in training
    rows = seen_in_training(d.tables["test"], d.tables["train"])
    seen_u, seen_i = set(d.train["user"]), set(d.train["item"])
    t = d.tables["test"]
    expect = [k for k in range(len(t)) if int(t.users[k]) in seen_u and int(t.items[k]) in seen_i]
    assert rows.tolist() == expect


def test_conversion_task_compresses_users_and_items(tmp_path):
    cfg = _cfg(tmp_path)
    d = load(cfg, KEY)
    parts = build(cfg, d)
    assert isinstance(parts.user_emb, ModuloEmbedding) and isinstance(parts.item_emb, ModuloEmbedding)
    assert parts.user_emb.buckets == round(0.1 * d.fold.n_users)
    assert parts.item_emb.buckets == round(0.1 * d.fold.n_items)
    # without the task's switch a method keeps its own default (items only, users full)
    prof = _profile(tmp_path)
    del prof["tasks"]["conversion"]["compress"]
    cfg2 = _cfg(tmp_path, tasks=prof["tasks"])
    parts2 = build(cfg2, load(cfg2, KEY))
    assert not isinstance(parts2.user_emb, ModuloEmbedding) and isinstance(parts2.item_emb, ModuloEmbedding)


@pytest.mark.parametrize("model,method,cr", [("deepfm", "modulo", "10"), ("din", "cel_lite", "10")])
def test_conversion_run_end_to_end_refits_for_the_same_passes(tmp_path, model, method, cr):
    cfg = _cfg(tmp_path)
    key = RunKey("conversion", "synth", "online", model, method, cr, 0)
    rec = execute_run(cfg, key, tmp_path / "run", log=lambda m: None)
    m = rec["metrics"]
    for k in ("test_auc", "test_logloss", "val_auc", "progressive_auc", "holdout_test_auc"):
        assert np.isfinite(m[k]), k
    assert 0.0 <= m["test_auc"] <= 1.0
    d = load(cfg, key)
    # one pass over train minus validation = ceil(D_train / b) steps; the refit makes the same
    # passes over the whole training part: steps scale by D_fold / D_train
    per_pass = -(-len(d.train) // 64)
    assert m["steps"] == per_pass
    whole_pass = -(-len(d.fold.train) // 64)                       # passes: 1 ends the refit's stream there
    assert m["refit_steps"] == min(whole_pass, -(-m["selected_step"] * len(d.fold.train) // len(d.train)))
    assert m["refit_steps"] > m["selected_step"]
    if method == "cel_lite":
        assert set(rec["clusters"]) == {"user", "item"}
        assert rec["clusters"]["user"]["max_clusters"] == round(0.1 * d.fold.n_users)


def _summary3(values: dict[str, list[float]], compression="5", model="din") -> pd.DataFrame:
    rows = [dict(task="conversion", dataset="ml-100k", variant="online", model=model, method=meth,
                 compression=compression, fold=0, seed=s, metric="test_auc", value=v)
            for meth, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_table3_pairs_seeds_and_tests_non_inferiority():
    spec = TABLES["table3"]
    # CEL-Lite is 0.0005 below PreHash on every seed (within the 0.001 margin): non-inferior;
    # PreHash is 0.01 above Modulo with noise: holds
    pre = [0.70, 0.71, 0.69, 0.72, 0.70]
    s = _summary3({"cel_lite": [v - 0.0005 + e for v, e in zip(pre, (1e-4, -1e-4, 0.0, 2e-4, -2e-4))],
                   "prehash_kmq": pre,
                   "modulo": [v - 0.01 + e for v, e in zip(pre, (0.001, -0.002, 0.0, 0.002, -0.001))]})
    stats = cell_stats(s, spec)
    cel = stats[(stats["method"] == "cel_lite")].iloc[0]
    assert cel["n"] == 5 and cel["mean"] == pytest.approx(100 * (np.mean(pre) - 0.0005))
    claims = check_claims(stats, spec, s).set_index(["better", "worse"])
    a = claims.loc[("cel_lite", "prehash_kmq")]
    assert a["n_pairs"] == 5 and a["holds"] and a["p_value"] < 0.01     # a shift inside the margin
    b = claims.loc[("prehash_kmq", "modulo")]
    assert b["holds"] and b["p_value"] < 0.01
    # 0.002 below (outside the margin) fails
    s2 = _summary3({"cel_lite": [v - 0.002 for v in pre], "prehash_kmq": pre, "modulo": pre})
    c2 = check_claims(cell_stats(s2, spec), spec, s2).set_index(["better", "worse"]).loc[("cel_lite", "prehash_kmq")]
    assert not c2["holds"]
    tex = render(s, spec)
    assert "DIN" in tex and "CEL-Lite" in tex and "$^{n=5}$" in tex
    # the detail table: progressive AUC and logloss beside the test AUC, same cells
    s3 = pd.concat([s, s.assign(metric="progressive_auc", value=s["value"] - 0.05),
                    s.assign(metric="test_logloss", value=0.6)])
    detail = cell_stats(s3, TABLES["table3_detail"]).set_index(["method", "metric"])
    assert detail.loc[("cel_lite", "test_auc"), "mean"] == pytest.approx(cel["mean"])
    assert detail.loc[("cel_lite", "progressive_auc"), "mean"] == pytest.approx(cel["mean"] - 5.0)
    assert detail.loc[("cel_lite", "test_logloss"), "mean"] == pytest.approx(0.6)
    assert "Progressive AUC" in render(s3, TABLES["table3_detail"])


def test_table2_din_rows_lower_mse_wins():
    spec = TABLES["table2"]
    rows = [dict(task="regression", dataset="ml-100k", variant="original", model="din", method=m, compression="5",
                 fold=f, seed=0, metric="test_mse", value=v + 0.01 * f)
            for m, v in (("cel", 0.85), ("prehash_kmq", 0.90), ("modulo", 1.05)) for f in range(5)]
    s = pd.DataFrame(rows)
    claims = check_claims(cell_stats(s, spec), spec, s)
    assert claims["holds"].all() and (claims["n_pairs"] == 5).all()


@pytest.mark.parametrize("name", ["din", "deepfm"])
@pytest.mark.parametrize("side", ["item", "user"])
def test_deep_candidate_scores_equal_the_model_on_every_pair(name, side):
    """CEL-Lite's reassignment in DIN/DeepFM: the fast (E, C, n) scores are the model's forward on
    the expanded pairs (candidate at the scored side's position, no history, no side features),
    and the candidate losses equal the generic chunked path."""
    import torch
    from cel.cluster.lite_scoring import candidate_losses
    from cel.models import MODELS
    from cel.train.tasks import Conversion

    torch.manual_seed(0)
    model = MODELS[name](nonneg="none", **({"side_features": ("genre",), "vocab": {"genre": 5}} if name == "deepfm" else {}))
    E, C, n, R = 4, 6, 5, 8
    assert model.candidate_scores(side, torch.randn(E, n, R), torch.randn(E, C, R)) is None     # still lazy
    model(torch.randn(3, R), torch.randn(3, R))                                                   # materialise
    others, cand = torch.randn(E, n, R), torch.randn(E, C, R)
    fast = model.candidate_scores(side, others, cand)
    o = others[:, None].expand(E, C, n, R).reshape(-1, R)
    c = cand[:, :, None].expand(E, C, n, R).reshape(-1, R)
    slow = (model(o, c) if side == "item" else model(c, o)).reshape(E, C, n)
    assert torch.allclose(fast, slow, atol=1e-5)
    task = Conversion()
    y, valid = (torch.rand(E, n) > 0.5).float(), torch.rand(E, n) > 0.2

    class Plain(torch.nn.Module):                       # the same model without the fast path
        def forward(self, *a, **k):
            return model(*a, **k)
    got = candidate_losses(model, side, others, cand, y, valid, task.loss_terms)
    ref = candidate_losses(Plain(), side, others, cand, y, valid, task.loss_terms)
    assert torch.allclose(got, ref, atol=1e-4)
