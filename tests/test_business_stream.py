"""The synthetic power-law stream as a dataset (kind ``stream``, issue #16's second Table 4 dataset).

Preparation: deterministic, the generator's rows in stream order (timestamp = position) with its
columns, each (user, item) pair once (its last row), planted groups as item genres. SAML's
scenario on the stream: every user's home scenario as ids 1..K. End to end: DUPN and SAML with
CEL-Lite run on a tiny stream through the run driver. The business profile: the stream's runs
mirror ML-100k's, the table has a column group for it, ``snakemake -n`` lists them.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cel import paths
from cel.config import ConfigError, ProjectConfig, load_config, validate
from cel.data.prepare import prepare_dataset
from cel.data.stream import StreamModel, generate_stream
from cel.data.stream_source import HOME, stream_spec
from cel.runkey import RunKey
from cel.train.run import execute_run, load, user_scenarios
from conftest import REPO, tiny_profile
from shared_fixtures import one_thread  # noqa: F401 (autouse: one torch thread)

STREAM = {"kind": "stream", "rows": 4000, "users": 150, "items": 80, "groups": 4, "rank": 4,
          "user_exponent": 0.8, "item_exponent": 0.8, "scenarios": 4, "home": 0.8, "behaviors": 3,
          "chunk": 1500, "seed": 3}
COLUMNS = ["user", "item", "rating", "timestamp", "label", "scenario", "behavior", "group", HOME]


def _profile(tmp_path, **stream_over) -> dict:
    prof = tiny_profile(tmp_path)
    prof["datasets"] = {"s": {**STREAM, **stream_over}}
    prof["variants"] = {"online": {"kind": "original", "split": "chrono", "test_fraction": 0.2}}
    prof["models"] = {m: {"rank": 4, "reg": 0.0, "nonneg": "none", "history": 5} for m in ("dupn", "saml")}
    prof["methods"] = {"cel_lite": {"m": 3, "t1": 1}}
    prof["tasks"] = {"conversion": {"kind": "conversion", "threshold": 4, "compress": "both",
                                    "feed": {"kind": "replay", "batch_size": 64, "buffer": 5, "passes": 1,
                                             "loss": "mean"},
                                    "train": {"optimizer": "adam", "lr": 0.01, "steps": 10000, "eval_every": 10,
                                              "val_fraction": 0.1, "refit": False, "patience": 0}}}
    prof["grid"] = [{"tasks": ["conversion"], "datasets": ["s"], "variants": ["online"], "models": ["dupn", "saml"],
                     "methods": ["cel_lite"], "compressions": [10], "folds": [0]}]
    return prof


def _config(prof: dict) -> ProjectConfig:
    return ProjectConfig.from_dict(validate(prof))


def _cfg(tmp_path, **stream_over) -> ProjectConfig:
    return _config(_profile(tmp_path, **stream_over))


# -- preparation ------------------------------------------------------------------------------------
def test_stream_kind_prepares_deterministically_with_the_generator_columns(tmp_path):
    ds = STREAM
    infos = [prepare_dataset("s", ds, tmp_path / d, tmp_path / "arch", None) for d in ("a", "b")]
    a, b = (pd.read_parquet(tmp_path / d / "interactions.parquet") for d in ("a", "b"))
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == COLUMNS
    assert infos[0]["source"] == "stream" and infos[0]["interactions"] == len(a)
    assert infos[0]["duplicates"]["rows_dropped"] == STREAM["rows"] - len(a) > 0
    # each pair once: the pair's LAST row of the raw stream; timestamp = the row's stream position
    raw = generate_stream(stream_spec("s", ds))
    assert not a.duplicated(["user", "item"]).any()
    last = raw.groupby(["user", "item"])["timestamp"].max().sort_values().to_numpy()
    np.testing.assert_array_equal(a["timestamp"].to_numpy(), last)
    at = raw.set_index("timestamp").loc[a["timestamp"]]
    np.testing.assert_array_equal(np.unique(at["user"])[a["user"]], at["user"])      # ids remapped in raw order
    np.testing.assert_array_equal(np.unique(at["item"])[a["item"]], at["item"])
    for col in ("rating", "label", "scenario", "behavior", "group"):
        np.testing.assert_array_equal(a[col].to_numpy(), at[col].to_numpy(), err_msg=col)
    home = StreamModel.build(stream_spec("s", ds)).home
    np.testing.assert_array_equal(a[HOME].to_numpy(), home[at["user"].to_numpy()])
    # items: the planted group as genre and cluster
    items = pd.read_parquet(tmp_path / "a" / "items.parquet").set_index("item")
    assert len(items) == a["item"].nunique()
    np.testing.assert_array_equal(items.loc[a["item"], "genres"].to_numpy(), ("g" + a["group"].astype(str)).to_numpy())
    # the parameters matter: another seed is another stream
    prepare_dataset("s", {**ds, "seed": 4}, tmp_path / "c", tmp_path / "arch", None)
    c = pd.read_parquet(tmp_path / "c" / "interactions.parquet")
    assert not (len(c) == len(a) and (c["rating"].to_numpy() == a["rating"].to_numpy()).all())


def test_stream_keys_are_checked_naming_the_key(tmp_path):
    for ds, key in (({**STREAM, "density": 0.1}, "datasets.s.density"),                   # synthetic's key
                    ({**STREAM, "rows": "many"}, "datasets.s.rows")):
        prof = _profile(tmp_path)
        prof["datasets"]["s"] = ds
        with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
            validate(prof)
    prof = tiny_profile(tmp_path)
    prof["datasets"]["synth"]["scenarios"] = 2                                          # stream's key
    with pytest.raises(ConfigError, match=re.escape("'datasets.synth.scenarios'")):
        validate(prof)
    with pytest.raises(ConfigError, match=re.escape("'datasets.s'")):
        stream_spec("s", {**STREAM, "groups": 100})                                      # groups > items
    with pytest.raises(ConfigError, match=re.escape("'datasets.s.clusters'")):
        stream_spec("s", {**STREAM, "clusters": 3})


# -- SAML's scenario ------------------------------------------------------------------------------------
def test_every_user_gets_its_home_scenario_in_1_to_K(tmp_path):
    cfg = _cfg(tmp_path)
    key = RunKey("conversion", "s", "online", "saml", "cel_lite", "10", 0)
    d = load(cfg, key)
    ids, mask = user_scenarios(cfg, d)
    assert ids.shape == (d.fold.n_users, 1) and bool(mask.all())
    assert int(ids.min()) == 1 and int(ids.max()) == STREAM["scenarios"]
    # the generator's home: the scenario most of a warm user's rows are in (home = 0.8)
    inter = pd.read_parquet(paths.variant_dir(cfg.results_dir, "s", "online") / "interactions.parquet")
    warm = inter.groupby("user").filter(lambda g: len(g) >= 10)
    mode = warm.groupby("user")["scenario"].agg(lambda s: s.value_counts().idxmax())
    assert len(mode) >= 20
    assert (ids[:, 0].numpy()[mode.index.to_numpy()] - 1 == mode.to_numpy()).mean() >= 0.9
    # more scenarios than SAML's branches, or a kind without scenarios: a config error naming the key
    with pytest.raises(ConfigError, match=re.escape("'datasets.s.scenarios'")):
        user_scenarios(_cfg(tmp_path, scenarios=5), d)
    synth = SimpleNamespace(key=RunKey("conversion", "synth", "original", "saml", "cel_lite", "10", 0),
                            fold=SimpleNamespace(n_users=5))
    with pytest.raises(ConfigError, match=re.escape("'datasets.synth.kind'")):
        user_scenarios(_config(tiny_profile(tmp_path)), synth)


# -- end to end ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["saml", "dupn"])
def test_business_models_with_cel_lite_run_on_the_stream(tmp_path, model):
    import json

    cfg = _cfg(tmp_path)
    key = RunKey("conversion", "s", "online", model, "cel_lite", "10", 0)
    rec = execute_run(cfg, key, tmp_path / "run", log=lambda m: None)
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m = stored["metrics"]
    assert m == rec["metrics"] and 0.0 <= m["test_auc"] <= 1.0 and np.isfinite(m["val_auc"])
    assert set(stored["clusters"]) == {"user", "item"}                 # CEL-Lite on both sides
    prepared = pd.read_parquet(paths.prepared_dir(cfg.results_dir, "s") / "interactions.parquet")
    assert stored["tags"]["n_users"] == prepared["user"].nunique()


# -- the business profile -------------------------------------------------------------------------------
def test_business_profile_runs_the_stream_as_ml100k_and_table4_shows_it():
    from cel.tables import TABLES, render, table_runs

    cfg = load_config(REPO / "config" / "business.yaml")
    assert cfg.dataset("synth-stream")["kind"] == "stream"
    runs = table_runs(TABLES["table4"], cfg.runs())

    def cells(ds):
        return sorted((r.model, r.method, r.compression, r.fold, r.seed) for r in runs if r.dataset == ds)

    assert len(cells("synth-stream")) == 50 and cells("synth-stream") == cells("ml-100k")
    spec = TABLES["table4"]
    assert "synthetic" in spec.caption and "synth-stream" in spec.axis("dataset").values
    rows = [dict(task="conversion", dataset=ds, variant="online", model="saml", method=meth, compression=cr,
                 fold=0, seed=s, metric="test_auc", value=0.7 + 0.01 * s)
            for ds in ("ml-100k", "synth-stream") for meth, cr in (("full", "100"), ("cel_lite", "10"))
            for s in range(2)]
    tex = render(pd.DataFrame(rows), spec)
    assert "Power-law stream (synthetic)" in tex and "MovieLens-100k" in tex


def test_snakemake_dry_run_lists_the_stream_runs(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    r = subprocess.run([str(snakemake), "table4", "-n", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                        "--configfile", str(REPO / "config" / "business.yaml")],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", r.stdout, flags=re.M))
    assert int(counts["train_run"]) == 100, counts                        # 50 per dataset
    assert "runs/conversion/synth-stream/online/saml/cel_lite/cr10/f0/s0/metrics.json" in out
    assert "data/synth-stream/prepared/interactions.parquet" in out
