"""The `csv` dataset kind (issue 18): your own interactions file through every rule.

Reader guarantees on generated files (string and unicode ids, duplicates, malformed lines, a
missing column, a BOM, Windows line endings, parquet), `cel validate --dataset`, the workflow end
to end on a small csv (prepare -> variants -> split -> train full + cel -> table7 without paper
values, source sha256 on every MLflow run), and ML-100k written as a csv equals the built-in kind.
"""
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cel.cli import main as cel_main
from cel.config import ProjectConfig, validate
from cel.data.csv_source import describe, load_csv, natural_order
from cel.data.prepare import prepare_dataset
from cel.errors import ConfigError, DataError
from conftest import MIRROR, REPO

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
COLS = {"user": "user_id", "item": "item_id", "rating": "stars", "timestamp": "ts"}


def _ds(path, **kw) -> dict:
    return {"kind": "csv", "path": str(path), "columns": dict(COLS), **kw}


def _write(tmp_path, text: str | bytes, name="inter.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def _prepare(tmp_path, ds: dict):
    out = tmp_path / "prepared"
    info = prepare_dataset("mine", ds, out, tmp_path / "arch", None)
    return info, out


def _generated(n_users=12, n_items=9, seed=0) -> pd.DataFrame:
    """Unicode string ids, every user and item present, distinct (user, item) pairs."""
    rng = np.random.default_rng(seed)
    pairs = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.5 or i == u % n_items]
    return pd.DataFrame({"user_id": [f"ü-{u}" for u, _ in pairs], "item_id": [f"品{i}" for _, i in pairs],
                         "stars": rng.integers(1, 6, len(pairs)).astype(float),
                         "ts": 1_600_000_000 + rng.permutation(len(pairs))})


# ------------------------------------------------------------------------- reading rules
def test_string_ids_remapped_in_natural_order_with_mapping_and_sha(tmp_path):
    text = "user_id,item_id,stars,ts\nu10,i2,4,100\nu2,i10,3,50\nu2,i2,5,70\nu1,i10,1,20\n"
    p = _write(tmp_path, text)
    info, out = _prepare(tmp_path, _ds(p))
    inter = pd.read_parquet(out / "interactions.parquet")
    users, items = pd.read_parquet(out / "user_ids.parquet"), pd.read_parquet(out / "item_ids.parquet")
    assert users["raw_user"].tolist() == ["u1", "u2", "u10"] and users["user"].tolist() == [0, 1, 2]
    assert items["raw_item"].tolist() == ["i2", "i10"]
    back = inter.assign(u=users.set_index("user").loc[inter["user"], "raw_user"].to_numpy(),
                        i=items.set_index("item").loc[inter["item"], "raw_item"].to_numpy())
    assert list(zip(back["u"], back["i"], back["rating"], back["timestamp"])) == [
        ("u10", "i2", 4.0, 100), ("u2", "i10", 3.0, 50), ("u2", "i2", 5.0, 70), ("u1", "i10", 1.0, 20)]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sha256"] == {"inter.csv": hashlib.sha256(p.read_bytes()).hexdigest()}
    assert meta["users"] == 3 and meta["items"] == 2 and meta["interactions"] == 4
    assert "id_maps" not in meta


def test_natural_order():
    assert list(natural_order(np.array(["10", "9", "-1", "100"], dtype=object))) == ["-1", "9", "10", "100"]
    assert list(natural_order(np.array(["b2", "a10", "a9", "a09x", "é"], dtype=object))) == ["a9", "a09x", "a10", "b2", "é"]


def test_unicode_bom_and_windows_line_endings(tmp_path):
    df = _generated()
    body = df.to_csv(index=False, lineterminator="\r\n")
    p = _write(tmp_path, b"\xef\xbb\xbf" + body.encode("utf-8"))
    info, out = _prepare(tmp_path, _ds(p))
    ids = pd.read_parquet(out / "user_ids.parquet")
    assert info["interactions"] == len(df) and info["users"] == 12 and info["items"] == 9
    assert ids["raw_user"].iloc[0] == "ü-0" and ids["raw_user"].iloc[-1] == "ü-11"
    assert pd.read_parquet(out / "item_ids.parquet")["raw_item"].iloc[-1] == "品8"


def test_duplicates_keep_last_by_timestamp_and_count_reported(tmp_path, capsys):
    # (a, x) three times: the last by timestamp is the *second* line (ts 300), not the last line
    text = "user_id,item_id,stars,ts\na,x,1,100\na,x,2,300\nb,y,3,50\na,x,5,200\nb,x,4,10\n"
    info, out = _prepare(tmp_path, _ds(_write(tmp_path, text)))
    inter = pd.read_parquet(out / "interactions.parquet")
    assert info["duplicates"] == {"policy": "keep_last", "pairs": 1, "rows_dropped": 2}
    assert inter["rating"].tolist() == [2.0, 3.0, 4.0]          # file order of the kept rows
    assert "2 earlier row(s) dropped" in capsys.readouterr().err


def test_duplicates_fail_names_both_lines(tmp_path):
    text = "user_id,item_id,stars,ts\na,x,1,100\n\nb,y,3,50\na,x,5,200\nb,x,4,10\n"
    with pytest.raises(DataError, match=r"inter\.csv: 1 duplicated .*user 'a' item 'x', at line 2, line 5"):
        _prepare(tmp_path, _ds(_write(tmp_path, text), duplicates="fail"))
    assert not (tmp_path / "prepared" / "interactions.parquet").exists()


@pytest.mark.parametrize("bad, why", [
    ("c,z,4,1,extra", "expected 4 fields"),
    ("c,z,4", "expected 4 fields"),
    ("c,z,four,1", "stars|rating 'four' is not a number"),
    ("c,z,4,yesterday", "neither a number nor an ISO 8601 date"),
    (",z,4,1", "id is empty"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, why):
    text = "user_id,item_id,stars,ts\r\na,x,1,100\r\nb,y,2,3\r\n" + bad + "\r\nd,x,1,1\r\n"
    with pytest.raises(DataError, match=r"inter\.csv, line 4: malformed line") as exc:
        _prepare(tmp_path, _ds(_write(tmp_path, text)))
    assert any(w in str(exc.value) for w in why.split("|"))


def test_missing_column_named_with_the_columns_found(tmp_path):
    p = _write(tmp_path, "user_id,item,stars,ts\na,x,1,1\n")
    with pytest.raises(DataError, match=r"column 'item_id' \(mapped to 'item'\) not found; columns found: "
                                        r"'user_id', 'item', 'stars', 'ts'"):
        _prepare(tmp_path, _ds(p))


@pytest.mark.parametrize("text, msg", [
    ("", "empty file"),
    ("user_id,item_id,stars,ts\n", "no data rows"),
    ("user_id,item_id,stars,ts\na,x,1,1\na,y,2,2\n", "a single user \\('a'\\)"),
    ("user_id,item_id,stars,ts\na,x,1,1\nb,x,2,2\n", "a single item \\('x'\\)"),
])
def test_empty_or_degenerate_files_are_clear_errors(tmp_path, text, msg):
    with pytest.raises(DataError, match=msg):
        _prepare(tmp_path, _ds(_write(tmp_path, text)))


def test_no_header_positions_and_multichar_sep_and_iso_dates(tmp_path):
    text = "a::x::4::2024-01-02T00:00:00Z\nb::x::2::2024-01-01\nb::y::5::2024-01-03T12:00:00+00:00\n"
    ds = {"kind": "csv", "path": str(_write(tmp_path, text)), "sep": "::", "header": False,
          "columns": {"user": 0, "item": 1, "rating": 2, "timestamp": 3}}
    info, out = _prepare(tmp_path, ds)
    inter = pd.read_parquet(out / "interactions.parquet")
    assert inter["timestamp"].tolist() == [1704153600, 1704067200, 1704283200]
    with pytest.raises(ConfigError, match="0-based positions"):
        load_csv("mine", {**ds, "columns": {"user": "u", "item": 1, "rating": 2}})


def test_label_target_without_timestamp_uses_file_order(tmp_path):
    p = _write(tmp_path, "u\ti\tclick\na\tx\t1\nb\tx\t0\nb\ty\t1\n")
    info, out = _prepare(tmp_path, {"kind": "csv", "path": str(p), "sep": "\t",
                                    "columns": {"user": "u", "item": "i", "label": "click"}})
    inter = pd.read_parquet(out / "interactions.parquet")
    assert inter["rating"].tolist() == [1.0, 0.0, 1.0] and inter["timestamp"].tolist() == [0, 1, 2]
    assert info["target"] == "label" and info["timestamp"] == "row order"
    with pytest.raises(DataError, match="line 3: .*'2' is not 0 or 1"):
        _prepare(tmp_path, {"kind": "csv", "path": str(_write(tmp_path, "u,i,c\na,x,1\nb,x,2\n")),
                            "columns": {"user": "u", "item": "i", "label": "c"}})


def test_parquet_by_extension_and_items_file(tmp_path):
    df = _generated()
    df.to_parquet(tmp_path / "inter.parquet", index=False)
    items = pd.DataFrame({"iid": [f"品{i}" for i in range(10)], "name": [f"t{i}" for i in range(10)],
                          "tags": ["a;b", "b", "", "c;a", "a", "b", "c", "a", "b", "zz"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    ds = _ds(tmp_path / "inter.parquet", items_file={"path": str(tmp_path / "items.csv"), "genre_sep": ";",
                                                     "columns": {"item": "iid", "title": "name", "genres": "tags"}})
    info, out = _prepare(tmp_path, ds)
    meta = pd.read_parquet(out / "items.parquet")
    assert info["interactions"] == len(df) and set(info["sha256"]) == {"inter.parquet", "items.csv"}
    assert meta["genres"].tolist()[:4] == ["a|b", "b", "", "c|a"] and len(meta) == 9       # 品9: no interactions
    assert info["items_file"]["items_without_interactions"] == 1
    df.drop(columns="stars").to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataError, match="column 'stars' .* columns found: 'user_id', 'item_id', 'ts'"):
        _prepare(tmp_path, _ds(tmp_path / "bad.parquet"))


def test_schema_keys_of_the_csv_kind():
    ok = validate({"datasets": {"d": _ds("x.csv", duplicates="fail", sep=";", header=True)}})
    assert ok["datasets"]["d"]["duplicates"] == "fail"
    assert validate({"datasets": {"m": {"kind": "ml-100k"}}})["datasets"]["m"] == {"kind": "ml-100k"}   # no defaults leak
    for bad, where in [({"kind": "csv", "path": "x"}, "datasets.d"),
                       ({**_ds("x"), "duplicates": "first"}, "datasets.d.duplicates"),
                       ({**_ds("x"), "columns": {"user": "u", "itm": "i"}}, "datasets.d.columns.itm"),
                       ({"kind": "ml-100k", "path": "x"}, "datasets.d.path"),
                       ({**_ds("x"), "users": 3}, "datasets.d.users")]:
        with pytest.raises(ConfigError, match=f"'{where}'"):
            validate({"datasets": {"d": bad}})
    with pytest.raises(ConfigError, match="exactly one of 'rating' or 'label'"):
        load_csv("d", {"kind": "csv", "path": "x", "columns": {"user": "u", "item": "i"}})
    with pytest.raises(ConfigError, match="named like the built-in dataset 'ml-100k'"):
        load_csv("ml-100k", _ds("x"))      # its cells would get the paper's ML-100k values


def test_cel_validate_dataset_prints_what_it_found(tmp_path, capsys):
    df = _generated()
    df.to_csv(tmp_path / "inter.csv", index=False)
    prof = {"results_dir": str(tmp_path / "res"), "datasets": {"mine": _ds(tmp_path / "inter.csv")}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(prof))
    assert cel_main(["validate", str(tmp_path / "p.yaml"), "--dataset", "mine"]) == 0
    out = capsys.readouterr().out
    assert f"rows: {len(df):,}\n" in out and "users: 12, items: 9 (whole file)" in out
    assert "rating: 1 .. 5" in out and "time: 2020-09-13" in out
    assert not (tmp_path / "res").exists()                                 # ran nothing
    big = pd.concat([df] * 2000, ignore_index=True)                        # 10^5+ rows: an estimate
    big.to_csv(tmp_path / "inter.csv", index=False)
    line = next(x for x in describe("mine", prof["datasets"]["mine"]) if "rows:" in x)
    est = int(line.split()[1].replace(",", ""))
    assert "estimate" in line and abs(est - len(big)) < 0.05 * len(big)


# ------------------------------------------------------------------------- the workflow
def _csv_profile(tmp_path, csv_path) -> dict:
    return {
        "results_dir": "results/csv", "archives_dir": "archives",
        "datasets": {"mine": _ds(csv_path)},
        "variants": {"original": {"kind": "original"}, "sparse": {"kind": "sparse", "drop_fraction": 0.3}},
        "split": {"folds": 5, "seed": 0},
        "models": {"nmf": {"rank": 4}},
        "methods": {"full": {}, "cel": {"t1": 5, "t2": 5}},
        "train": {"optimizer": "gd", "lr": 0.002, "steps": 20, "eval_every": 10, "log_every": 1000},
        "grid": [{"datasets": ["mine"], "methods": ["full"], "compressions": [100], "folds": [0, 4]},
                 {"datasets": ["mine"], "methods": ["cel"], "compressions": [5], "folds": [0]},
                 {"datasets": ["mine"], "variants": ["sparse"], "methods": ["full"], "compressions": [100],
                  "folds": [0]}],
        "tables": ["table7"], "mlflow": {"experiment": "cel-csv"},
    }


@pytest.mark.slow
def test_workflow_end_to_end_on_a_csv(tmp_path):
    df = _generated(n_users=40, n_items=30)
    csv_path = tmp_path / "data" / "inter.csv"
    csv_path.parent.mkdir()
    df.to_csv(csv_path, index=False)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(_csv_profile(tmp_path, "data/inter.csv")))   # relative path
    cmd = [str(SNAKEMAKE), "all", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
           "--configfile", str(tmp_path / "p.yaml")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = tmp_path / "results" / "csv"
    sha = hashlib.sha256(csv_path.read_bytes()).hexdigest()
    metrics = sorted(res.glob("runs/**/metrics.json"))
    assert len(metrics) == 4
    for m in metrics:
        assert json.loads(m.read_text())["tags"]["source_sha256"] == f"inter.csv={sha}"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{res / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("cel-csv").experiment_id])
    assert len(runs) == 4 and all(x.data.tags["cel.source_sha256"] == f"inter.csv={sha}" for x in runs)
    cells = pd.read_csv(res / "tables" / "table7.csv", dtype={"compression": str})
    mine = cells[cells["dataset"] == "mine"]
    assert set(mine["method"]) == {"full", "cel"} and mine["paper"].isna().all()
    assert int(mine.loc[mine["method"] == "full", "n"].iloc[0]) == 2
    assert json.loads((res / "data" / "mine" / "original" / "split.json").read_text())["folds"] == 5
    body = (res / "tables" / "table7.tex").read_text().split("\\midrule", 1)[1].split("\\bottomrule")[0]
    assert body.count("$\\pm$") == len(mine) == body.count("\\scriptsize[--]")   # ours: no paper value
    assert (res / "data" / "mine" / "prepared" / "user_ids.parquet").exists()
    # a changed file reprepares the dataset and reruns everything after it
    df.assign(stars=df["stars"].iloc[::-1].to_numpy()).to_csv(csv_path, index=False)
    dry = subprocess.run(cmd + ["-n"], capture_output=True, text=True, timeout=600)
    assert "prepare_dataset" in dry.stdout and "train_run" in dry.stdout


# ------------------------------------------------------------------------- ML-100k as a csv
def _ml100k_csv(tmp_path, prefix: bool) -> Path:
    with zipfile.ZipFile(MIRROR / "ml-100k.zip") as z:
        raw = z.read("ml-100k/u.data")
    d = pd.read_csv(__import__("io").BytesIO(raw), sep="\t", header=None, names=["user_id", "item_id", "stars", "ts"])
    if prefix:
        d = d.assign(user_id="user_" + d["user_id"].astype(str), item_id="movie-" + d["item_id"].astype(str))
    p = tmp_path / ("ml100k_str.csv" if prefix else "ml100k.csv")
    d.to_csv(p, index=False)
    return p


@pytest.mark.slow
def test_ml100k_as_csv_equals_the_builtin_kind(tmp_path, monkeypatch):
    """Numeric ids: the same prepared interactions and, trained on the quick profile's settings,
    the same test MSE (full and CEL 5%, fold 0, seed 0) to 1e-6. String ids: the same tables up to
    the written mapping (natural order gives the same numbering)."""
    if not (MIRROR / "ml-100k.zip").exists():
        pytest.skip("ML-100k mirror not available")
    monkeypatch.setenv("CEL_DATA_MIRROR", str(MIRROR))
    from cel.config import resolve_extends

    prof = resolve_extends(yaml.safe_load((REPO / "config" / "quick.yaml").read_text()))
    prof.update(results_dir=str(tmp_path / "res"), archives_dir=str(tmp_path / "arch"), only_datasets="")
    prof["datasets"] = {"ml-100k": {"kind": "ml-100k"},
                        "csv_num": _ds(_ml100k_csv(tmp_path, False)), "csv_str": _ds(_ml100k_csv(tmp_path, True))}
    prof["methods"] = {"full": {}, "cel": {}}
    prof["train"]["steps"] = 400
    prof["grid"] = [{"datasets": ["ml-100k", "csv_num"], "methods": ["full"], "compressions": [100], "folds": [0]},
                    {"datasets": ["ml-100k", "csv_num"], "methods": ["cel"], "compressions": [5], "folds": [0]}]
    cfg = ProjectConfig.from_dict(validate(prof))
    from cel.data.pipeline import run_prepare

    tables = {}
    for name in ("ml-100k", "csv_num", "csv_str"):
        run_prepare(cfg, name)
        tables[name] = pd.read_parquet(tmp_path / "res" / "data" / name / "prepared" / "interactions.parquet")
    pd.testing.assert_frame_equal(tables["ml-100k"], tables["csv_num"])
    pd.testing.assert_frame_equal(tables["ml-100k"], tables["csv_str"])
    ids = pd.read_parquet(tmp_path / "res" / "data" / "csv_str" / "prepared" / "user_ids.parquet")
    assert (ids["raw_user"] == "user_" + (ids["user"] + 1).astype(str)).all()
    from cel.train.run import execute_run

    mse = {}
    for key in cfg.runs():
        rec = execute_run(cfg, key, tmp_path / "runs" / key.key.replace("/", "_"))
        mse[(key.dataset, key.method)] = rec["metrics"]["test_mse"]
    for method in ("full", "cel"):
        assert abs(mse[("ml-100k", method)] - mse[("csv_num", method)]) <= 1e-6, mse


def test_timestamped_csv_stream_runs_cel_lite_through_the_stream_feed(tmp_path):
    """A generated time-stamped stream, as a csv with string ids in shuffled file order, runs
    CEL-Lite on the replay (stream) feed from a profile alone: the feed follows the timestamps."""
    from cel.data.stream import StreamSpec, generate_stream
    from cel.train.run import execute_run

    s = generate_stream(StreamSpec(rows=3000, users=150, items=80, groups=4, chunk=3000, seed=1))
    s = s.sample(frac=1.0, random_state=0)                      # file order is not time order
    s.assign(user=("v" + s["user"].astype(str)), item=("it" + s["item"].astype(str)),
             timestamp=pd.to_datetime(s["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(
        tmp_path / "stream.csv", index=False, columns=["user", "item", "rating", "timestamp"])
    prof = {"results_dir": str(tmp_path / "res"), "archives_dir": str(tmp_path / "arch"),
            "datasets": {"stream": {"kind": "csv", "path": str(tmp_path / "stream.csv"),
                                    "columns": {"user": "user", "item": "item", "rating": "rating",
                                                "timestamp": "timestamp"}}},
            "variants": {"original": {"kind": "original"}}, "models": {"nmf": {"rank": 4}},
            "tasks": {"stream_once": {"kind": "regression", "feed": {"kind": "replay", "batch_size": 200,
                                                                     "buffer": 10, "passes": 1, "loss": "mean"},
                                      "train": {"lr": 0.5, "steps": 100000, "eval_every": 100000,
                                                "log_every": 100000, "val_fraction": 0.0}}},
            "methods": {"cel_lite": {"m": 4, "t1": 1}},
            "grid": [{"tasks": ["stream_once"], "datasets": ["stream"], "methods": ["cel_lite"],
                      "compressions": [5], "folds": [0]}]}
    cfg = ProjectConfig.from_dict(validate(prof))
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run")
    inter = pd.read_parquet(tmp_path / "res" / "data" / "stream" / "prepared" / "interactions.parquet")
    last = s[s["timestamp"] == s.groupby(["user", "item"])["timestamp"].transform("max")]   # keep_last by time
    assert inter["timestamp"].tolist() == last["timestamp"].tolist()          # epoch seconds, file order
    meta = json.loads((tmp_path / "res" / "data" / "stream" / "prepared" / "meta.json").read_text())
    assert meta["duplicates"]["rows_dropped"] == len(s) - len(last) > 0      # a power-law stream repeats pairs
    assert np.isfinite(rec["metrics"]["test_mse"]) and rec["metrics"]["steps"] >= 4
    assert rec["tags"]["source_sha256"].startswith("stream.csv=")


def test_label_csv_with_items_file_runs_deepfm_conversion_on_the_chrono_split(tmp_path):
    """A 0/1 label file and an items file with genres and brands: the chronological split
    (variant split: chrono, needs the timestamp) and DeepFM with genre + brand side features on a
    conversion task (threshold 1), from the profile alone."""
    from cel.train.run import execute_run

    rng = np.random.default_rng(3)
    n = 4000
    u, i = rng.integers(0, 120, n), rng.integers(0, 60, n)
    pd.DataFrame({"who": [f"客{x}" for x in u], "what": [f"sku-{x}" for x in i], "clicked": (rng.random(n) < 0.3).astype(int),
                  "when": 1_700_000_000 + rng.permutation(n)}).to_csv(tmp_path / "clicks.csv", index=False)
    pd.DataFrame({"sku": [f"sku-{x}" for x in range(60)], "cats": [f"c{x % 5};c{x % 3}" for x in range(60)],
                  "maker": [f"m{x % 7}" for x in range(60)]}).to_csv(tmp_path / "items.csv", index=False)
    prof = {"results_dir": str(tmp_path / "res"), "archives_dir": str(tmp_path / "arch"),
            "datasets": {"clicks": {"kind": "csv", "path": str(tmp_path / "clicks.csv"),
                                    "columns": {"user": "who", "item": "what", "label": "clicked", "timestamp": "when"},
                                    "items_file": {"path": str(tmp_path / "items.csv"), "genre_sep": ";",
                                                   "columns": {"item": "sku", "genres": "cats", "brand": "maker"}}}},
            "variants": {"online": {"kind": "original", "split": "chrono", "test_fraction": 0.2}},
            "models": {"deepfm": {"rank": 4, "reg": 0.0, "nonneg": "none", "side_features": ["genre", "brand"]}},
            "tasks": {"conversion": {"kind": "conversion", "threshold": 1,
                                     "feed": {"kind": "minibatch", "batch_size": 512}}},
            "methods": {"modulo": {}},
            "train": {"optimizer": "adam", "lr": 0.01, "steps": 30, "eval_every": 10, "log_every": 1000,
                      "val_fraction": 0.1},
            "grid": [{"tasks": ["conversion"], "datasets": ["clicks"], "variants": ["online"], "models": ["deepfm"],
                      "methods": ["modulo"], "compressions": [10], "folds": [0]}]}
    cfg = ProjectConfig.from_dict(validate(prof))
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run")
    vdir = tmp_path / "res" / "data" / "clicks" / "online"
    assert json.loads((vdir / "split.json").read_text())["kind"] == "chrono"
    inter, folds = pd.read_parquet(vdir / "interactions.parquet"), pd.read_parquet(vdir / "folds.parquet")["fold"]
    assert inter["timestamp"][folds == 0].min() > inter["timestamp"][folds != 0].max()     # test = the latest
    items = pd.read_parquet(vdir / "items.parquet")
    assert items["genres"].iloc[:2].tolist() == ["c0", "c1"] and items["brand"].iloc[0] == "m0"   # "c0;c0": once
    assert 0.0 <= rec["metrics"]["test_auc"] <= 1.0
