"""SAML's scenario on Amazon (issue #16: "on Amazon, the top-level category"), on small files written
in exactly the published Amazon 2014 format (header-less ratings CSV, gzip of Python-literal dicts).

* the prepared items table's ``top_category``: the level below the data set's own root ("PC" under
  "Video Games"); none for an empty list, a one-name path or a path under another root;
* every user's home category through the run driver's ``load`` and ``user_scenarios``: the 3 most
  frequent top categories of the training rows keep ids 1..3, the rest is 4 ("other"), ties go to
  the smaller id, a user without a categorised training row is 0, and the rows of the validation
  slice and of the test part (the latest rows here, which would change several users' answers)
  never count;
* SAML with CEL-Lite trains on a tiny Amazon data set through ``execute_run``;
* config/business.yaml: Amazon's runs mirror ML-100k's, are off by default (``only_datasets``),
  and ``snakemake -n table4 --config only_datasets=video_games`` plans the Amazon chain.
"""
from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cel.config import ProjectConfig, load_config, validate
from cel.data.amazon import top_categories
from cel.data.amazon_scenarios import home_categories
from cel.errors import DataError
from cel.runkey import RunKey
from cel.train.run import execute_run, load, user_scenarios
from conftest import REPO, tiny_profile
from shared_fixtures import one_thread  # noqa: F401 (autouse: one torch thread)

CAT = "Video_Games"            # the published file names: ratings_Video_Games.csv, meta_Video_Games.json.gz


def write_pair(folder: Path, ratings: list[tuple[str, str, float, int]], meta: dict[str, list]) -> None:
    """``ratings_<CAT>.csv`` (user,item,rating,timestamp lines) and ``meta_<CAT>.json.gz`` (one Python
    literal dict per line, as published: repr of a dict with single quotes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"ratings_{CAT}.csv").write_text("".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ratings))
    lines = [repr({"asin": a, "title": f"Jeu {a} – ゲーム", "price": 9.99, "salesRank": {"Video Games": k},
                   "categories": c}) for k, (a, c) in enumerate(meta.items())]
    with gzip.open(folder / f"meta_{CAT}.json.gz", "wb") as fh:
        fh.write(("\n".join(lines) + "\n").encode("utf-8"))


def _vg(*paths) -> list:
    return [["Video Games", *p] for p in paths]


# -- the planted data set ---------------------------------------------------------------------------
P = ["0000000101", "0000000102", "0000000103", "0000000104"]        # PC (leading zeros: string ids)
X = ["0000000201", "0000000202", "0000000203"]                      # Xbox One
S = ["B000000301", "B000000302", "B000000303"]                      # PlayStation 4
DS, MAC = "B000000401", "B000000501"                                  # Nintendo DS; Mac and Nintendo DS
NOCAT, ROOTONLY, OTHERROOT, NOMETA = "B000000601", "B000000602", "B000000603", "B00NOMETA1"  # no category
META = {
    P[0]: _vg(["PC", "Games"]), P[1]: _vg(["PC", "Accessories", "Mice"], ["PC", "Games"]),   # PC once
    P[2]: _vg(["PC", "Games"]), P[3]: _vg(["PC"]),
    **{x: _vg(["Xbox One", "Games"]) for x in X},
    **{s: _vg(["PlayStation 4", "Games"]) for s in S},
    DS: _vg(["Nintendo DS", "Games"]),
    MAC: _vg(["Mac", "Games"], ["Nintendo DS"]),                    # two rare categories: "other" once
    NOCAT: [], ROOTONLY: [["Video Games"]], OTHERROOT: [["Electronics", "Computers & Accessories", "Mice"]],
    "B000000999": _vg(["Wii", "Games"]),                            # metadata only, never rated
}
# the training rows (the earliest 22): PC 7, Xbox One 5, PlayStation 4 4 rows -> ids 1, 2, 3;
# Nintendo DS 2, Mac 1 -> 4 ("other")
EARLY = {
    "A1PCFAN": P + [X[0]],                        # PC 4, Xbox 1           -> 1
    "A2XBOX": X + [P[0]],                         # Xbox 3, PC 1           -> 2
    "A3TIE": [S[0], X[2]],                        # PS4 1, Xbox 1: a tie   -> the smaller id, 2
    "A4RARE": [DS, MAC, S[1]],                    # other 2, PS4 1         -> 4
    "A5NOCAT": [NOCAT, ROOTONLY, OTHERROOT, NOMETA],  # nothing categorised -> 0
    "A6LATE": [S[0], S[2]],                       # PS4 2                  -> 3
    "A8PC": [P[1], P[2]],                         # PC 2                   -> 1
}
# the latest 8 rows: the validation slice (the first 2: 10% of the 24 training rows) and the test
# part (the last 6: 20% of 30). Counted, they would make A6LATE a PC user (validation alone: a tie
# of PC 2 and PS4 2 -> 1), A7LATE an Xbox user and A5NOCAT a PC user.
LATE = [("A6LATE", P[0]), ("A6LATE", P[1]),
        ("A6LATE", P[2]), ("A6LATE", P[3]), ("A7LATE", X[0]), ("A7LATE", X[1]), ("A7LATE", X[2]),
        ("A5NOCAT", P[0])]
EXPECTED = {"A1PCFAN": 1, "A2XBOX": 2, "A3TIE": 2, "A4RARE": 4, "A5NOCAT": 0, "A6LATE": 3, "A7LATE": 0, "A8PC": 1}


def planted_ratings() -> list[tuple[str, str, float, int]]:
    early = [(u, i) for u, items in EARLY.items() for i in items]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(early))                   # early rows in shuffled time order
    rows = [(u, i, float(1 + (k % 5)), 1_300_000_000 + 100 * int(order[k])) for k, (u, i) in enumerate(early)]
    rows += [(u, i, 5.0, 1_400_000_000 + 100 * k) for k, (u, i) in enumerate(LATE)]
    return [rows[k] for k in rng.permutation(len(rows))]  # the file is not in time order


def _profile(tmp_path: Path, mirror: Path, models=("saml",), steps: int = 1000) -> dict:
    prof = tiny_profile(tmp_path)
    prof["data"] = {"mirror": str(mirror), "require_checksums": False}
    prof["datasets"] = {"vg": {"kind": "amazon-video-games"}}
    prof["variants"] = {"online": {"kind": "original", "split": "chrono", "test_fraction": 0.2}}
    prof["models"] = {m: {"rank": 4, "reg": 0.0, "nonneg": "none", "history": 5} for m in models}
    prof["methods"] = {"cel_lite": {"m": 3, "t1": 1}}
    prof["tasks"] = {"conversion": {"kind": "conversion", "threshold": 4, "compress": "both",
                                    "feed": {"kind": "replay", "batch_size": 64, "buffer": 5, "passes": 1,
                                             "loss": "mean"},
                                    "train": {"optimizer": "adam", "lr": 0.01, "steps": steps, "eval_every": 2,
                                              "val_fraction": 0.1, "refit": False, "patience": 0}}}
    prof["grid"] = [{"tasks": ["conversion"], "datasets": ["vg"], "variants": ["online"], "models": list(models),
                     "methods": ["cel_lite"], "compressions": [10], "folds": [0]}]
    return prof


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch):
    # the profile's mirror holds the generated files: CI's CEL_DATA_MIRROR (MovieLens) must not replace it
    monkeypatch.delenv("CEL_DATA_MIRROR", raising=False)


# -- the items table ------------------------------------------------------------------------------------
def test_top_category_is_the_level_below_the_data_sets_root():
    root, top = top_categories({"a": (("Video Games", "PC"), ("Video Games", "Mac")), "b": (("Video Games", "PC"),),
                                "c": (("Electronics", "Mice"),), "d": ()})
    assert root == "Video Games" and top == {"a": "PC|Mac", "b": "PC", "c": "", "d": ""}
    # the root is the first name of the most items' paths (ties: the smallest name), not of the first item
    root, top = top_categories({"a": (("Toys", "Dolls"),), "b": (("Electronics", "Mice"),),
                                "c": (("Electronics", "Cables"), ("Toys", "Cars"))})
    assert root == "Electronics" and top == {"a": "", "b": "Mice", "c": "Cables"}
    assert top_categories({"a": (("B", "x"),), "b": (("A", "y"),)})[0] == "A"
    assert top_categories({"a": ()}) == ("", {"a": ""})


# -- the home category ------------------------------------------------------------------------------------
def test_every_user_gets_the_home_category_of_its_training_rows(tmp_path):
    write_pair(tmp_path / "mirror", planted_ratings(), META)
    cfg = ProjectConfig.from_dict(validate(_profile(tmp_path, tmp_path / "mirror")))
    d = load(cfg, RunKey("conversion", "vg", "online", "saml", "cel_lite", "10", 0))
    users = np.sort(list({*EARLY, *(u for u, _ in LATE)}))               # prepared ids: raw ids sorted
    raw_items = d.items["raw_item"].to_numpy()
    by_raw = d.items.set_index("raw_item")["top_category"]
    assert by_raw[P[1]] == "PC" and by_raw[MAC] == "Mac|Nintendo DS" and by_raw[X[0]] == "Xbox One"
    assert by_raw[[NOCAT, ROOTONLY, OTHERROOT, NOMETA]].tolist() == ["", "", "", ""]
    # the split is the planted one: training = the early rows, validation + test = the late ones
    t = d.tables
    pairs = lambda tab: {(users[u], raw_items[i]) for u, i in zip(tab.users.tolist(), tab.items.tolist())}  # noqa: E731
    assert pairs(t["train"]) == {(u, i) for u, items in EARLY.items() for i in items}
    assert pairs(t["val"]) == set(LATE[:2]) and pairs(t["test"]) == set(LATE[2:])

    ids, mask = user_scenarios(cfg, d)
    assert ids.shape == (len(users), 1) and ids.dtype == torch.int64
    assert dict(zip(users, ids[:, 0].tolist())) == EXPECTED
    assert mask[:, 0].tolist() == [EXPECTED[u] > 0 for u in users]
    # the names of ids 1..3, by number of training rows
    _, named = home_categories(d.items, t["train"].users.numpy(), t["train"].items.numpy(), len(users), 4)
    assert named == ["PC", "Xbox One", "PlayStation 4"]
    # with 2 scenarios only PC keeps its id: every other user is "other"
    two, _ = home_categories(d.items, t["train"].users.numpy(), t["train"].items.numpy(), len(users), 2)
    assert dict(zip(users, two.tolist())) == {u: v if v <= 1 else 2 for u, v in EXPECTED.items()}
    # an items table prepared before the column existed: a data error saying what to do
    with pytest.raises(DataError, match="prepare the Amazon data set again"):
        home_categories(d.items.drop(columns="top_category"), t["train"].users.numpy(), t["train"].items.numpy(),
                        len(users), 4)


# -- end to end -------------------------------------------------------------------------------------
PLATFORMS = ["PC", "Xbox One", "PlayStation 4", "Nintendo DS", "Mac", "Wii"]


def random_pair(folder: Path, users: int = 40, items: int = 30, per_user: int = 10, seed: int = 0) -> None:
    """A tiny random data set in the published format: platform categories (some items none), a
    learnable preference (rating >= 4 when user and item parities match)."""
    rng = np.random.default_rng(seed)
    asins = [f"{k:010d}" if k % 3 else f"B00{k:07X}" for k in range(items)]
    rows = []
    for u in range(users):
        for j in rng.choice(items, per_user, replace=False):
            good = (u % 2) == (j % 2)
            rows.append((f"A{u:03d}XQLN", asins[j], float(rng.choice([4, 5]) if good else rng.choice([1, 2, 3])),
                         int(1.3e9 + rng.integers(0, 10**7))))
    meta = {a: (_vg([PLATFORMS[k % len(PLATFORMS)], "Games"]) if k % 7 else []) for k, a in enumerate(asins)}
    write_pair(folder, rows, meta)


def test_saml_with_cel_lite_trains_on_amazon_through_the_run_driver(tmp_path):
    random_pair(tmp_path / "mirror")
    cfg = ProjectConfig.from_dict(validate(_profile(tmp_path, tmp_path / "mirror")))
    key = RunKey("conversion", "vg", "online", "saml", "cel_lite", "10", 0)
    ids, _ = user_scenarios(cfg, load(cfg, key))
    assert len(set(ids[:, 0].tolist()) - {0}) >= 3                     # several branches get users
    rec = execute_run(cfg, key, tmp_path / "run", log=lambda m: None)
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m = stored["metrics"]
    assert m == rec["metrics"] and 0.0 <= m["test_auc"] <= 1.0 and np.isfinite(m["val_auc"])
    assert m["steps"] >= 3                                             # one pass of the replay feed
    assert set(stored["clusters"]) == {"user", "item"}                 # CEL-Lite on both sides
    assert stored["tags"]["n_users"] == 40


# -- the business profile ---------------------------------------------------------------------------
def test_business_profile_has_amazon_off_by_default_and_table4_shows_it_when_run():
    from cel.tables import TABLES, render, table_runs

    raw = yaml.safe_load((REPO / "config" / "business.yaml").read_text())
    here = load_config(REPO / "config" / "business.yaml")
    assert here.dataset("video_games")["kind"] == "amazon-video-games"
    assert here.dataset("electronics")["kind"] == "amazon-electronics"
    assert {r.dataset for r in here.runs()} == {"ml-100k", "synth-stream"}          # nothing changes here
    everything = ProjectConfig.from_dict(validate({**raw, "only_datasets": ""}))
    runs = table_runs(TABLES["table4"], everything.runs())

    def cells(ds):
        return sorted((r.model, r.method, r.compression, r.fold, r.seed) for r in runs if r.dataset == ds)

    for ds in ("video_games", "electronics"):
        assert len(cells(ds)) == 50 and cells(ds) == cells("ml-100k")
    spec = TABLES["table4"]
    assert spec.axis("dataset").values == ("ml-100k", "synth-stream", "video_games", "electronics")
    assert spec.axis("dataset").labels["video_games"] == "Video Games"
    rows = [dict(task="conversion", dataset=ds, variant="online", model="saml", method=meth, compression=cr,
                 fold=0, seed=s, metric="test_auc", value=0.7 + 0.01 * s)
            for ds in ("ml-100k", "video_games") for meth, cr in (("full", "100"), ("cel_lite", "10"))
            for s in range(2)]
    tex = render(pd.DataFrame(rows), spec)
    assert "Video Games" in tex and "MovieLens-100k" in tex and "Electronics" not in tex   # no runs, no column


def test_snakemake_dry_run_plans_the_amazon_chain(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    r = subprocess.run([str(snakemake), "table4", "-n", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                        "--configfile", str(REPO / "config" / "business.yaml"),
                        "--config", "only_datasets=video_games"],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    counts = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", r.stdout, flags=re.M)}
    assert counts["train_run"] == 50 and counts["download_archive"] == 1 and counts["prepare_dataset"] == 1, counts
    assert "amazon-video-games.zip" in out and "amazon-electronics.zip" not in out
    assert "runs/conversion/video_games/online/saml/cel_lite/cr10/f0/s0/metrics.json" in out
    assert "runs/conversion/ml-100k/" not in out
