"""Amazon 2014 end to end (issue #12, "Amazon end to end"): the fetch step packs the published
plain files (from a mirror here) into the source's archive and records their checksums in a lock
file on first use; the Snakemake rules then prepare, split by time, train the conversion runs and
write Table 3, on small files the test writes in exactly the published format (header-less
ratings CSV, gzip of Python-literal dicts with unicode, a missing brand, empty categories)."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cel.data.amazon_fetch import LOCK_NAME, pack_files, read_lock
from cel.data.fetch import fetch_archive, read_member
from cel.data.sources import SOURCES
from cel.errors import ChecksumError, DataError
from conftest import REPO

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
CATS = {"video_games": ("amazon-video-games", "Video_Games"), "electronics": ("amazon-electronics", "Electronics")}


def write_category(folder: Path, cat: str, seed: int, users: int = 40, items: int = 30, per_user: int = 12) -> None:
    """``ratings_<cat>.csv`` and ``meta_<cat>.json.gz`` in the published format: string ids (ASINs
    with leading zeros), ratings 1-5, Unix seconds; metadata as Python literals, one per line."""
    rng = np.random.default_rng(seed)
    asins = [f"{k:010d}" if k % 3 else f"B00{k:07X}" for k in range(items)]
    lines = []
    for u in range(users):
        for j in rng.choice(items, per_user, replace=False):
            good = (u % 2) == (j % 2)                    # a learnable preference: rating >= 4 when parities match
            rating = float(rng.choice([4, 5]) if good else rng.choice([1, 2, 3]))
            lines.append(f"A{u:03d}X{seed}QLN,{asins[j]},{rating},{int(1.3e9 + rng.integers(0, 10**7))}")
    (folder / f"ratings_{cat}.csv").write_text("\n".join(lines) + "\n")
    meta = []
    for k, a in enumerate(asins):
        d = {"asin": a, "title": f"Jeu n°{k} – ゲーム", "price": 9.99, "salesRank": {cat: k},
             "categories": [[cat.replace("_", " "), "Games", f"Leaf {k % 4}"]] if k % 5 else []}
        if k % 4:
            d["brand"] = f"Brand {k % 3}"
        meta.append(repr(d))
    meta.append("{'asin': u'ZZZ0000001', 'title': u'M\\xe9tadonn\\xe9e seule', 'categories': [[]]}")  # never rated
    with gzip.open(folder / f"meta_{cat}.json.gz", "wb") as fh:
        fh.write(("\n".join(meta) + "\n").encode("utf-8"))


def test_fetch_packs_the_files_and_locks_their_checksums(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    mirror.mkdir()
    write_category(mirror, "Video_Games", seed=0)
    src = SOURCES["amazon-video-games"]
    assert src.files["ratings"].startswith("http://snap.stanford.edu/") and src.files["items"].endswith(
        "meta_Video_Games.json.gz")
    path = fetch_archive(src, archives, str(mirror))
    lock = read_lock(archives)
    assert set(lock) == {"ratings_Video_Games.csv", "meta_Video_Games.json.gz"}
    data, sha = read_member(path, src.members["ratings"], require_checksum=False)
    assert data == (mirror / "ratings_Video_Games.csv").read_bytes() and sha == lock["ratings_Video_Games.csv"]
    # a later fetch of a changed file fails against the lock, naming both hashes; nothing is left
    path.unlink()
    with open(mirror / "ratings_Video_Games.csv", "a") as fh:
        fh.write("A999,0000000001,5.0,1300000000\n")
    with pytest.raises(ChecksumError, match="ratings_Video_Games.csv") as exc:
        fetch_archive(src, archives, str(mirror))
    assert exc.value.expected == lock["ratings_Video_Games.csv"]
    assert not path.exists() and not list(archives.glob(".*part"))
    # an HTML page under the metadata's name, and a missing file: clear errors
    write_category(mirror, "Video_Games", seed=0)
    (mirror / "meta_Video_Games.json.gz").write_text("<!DOCTYPE html><html>Not found</html>")
    with pytest.raises(DataError, match="HTML page"):
        fetch_archive(src, archives, str(mirror))
    (mirror / "meta_Video_Games.json.gz").unlink()
    with pytest.raises(DataError, match="not found in the data mirror.*snap.stanford.edu"):
        pack_files(src, archives, str(mirror))
    assert not path.exists()


def _profile(tmp_path: Path, mirror: Path) -> dict:
    return {
        "results_dir": "results", "archives_dir": "archives", "only_datasets": "video_games",
        "data": {"mirror": str(mirror), "require_checksums": False},
        "datasets": {name: {"kind": kind} for name, (kind, _) in CATS.items()},
        "variants": {"online": {"kind": "original", "split": "chrono", "test_fraction": 0.2}},
        "models": {"deepfm": {"rank": 4, "reg": 0.0, "nonneg": "none", "side_features": ["genre", "brand"]}},
        "methods": {"full": {}, "cel_lite": {"m": 3, "t1": 1}},
        "tasks": {"conversion": {"kind": "conversion", "threshold": 4, "compress": "both",
                                 "feed": {"kind": "replay", "batch_size": 64, "buffer": 5, "passes": 1, "loss": "mean"},
                                 "train": {"optimizer": "adam", "lr": 0.02, "steps": 1000, "eval_every": 2,
                                           "val_fraction": 0.1, "refit": True}}},
        "grid": [{"tasks": ["conversion"], "datasets": list(CATS), "variants": ["online"], "models": ["deepfm"],
                  "methods": ["full", "cel_lite"], "compressions": [100], "folds": [0], "seeds": [0]}],
        "tables": ["table3"],
        "mlflow": {"experiment": "test-amazon"},
    }


@pytest.mark.slow
def test_snakemake_builds_table3_from_amazon_files(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for seed, (_, cat) in enumerate(CATS.values()):
        write_category(mirror, cat, seed=seed)
    (tmp_path / "amazon.yaml").write_text(yaml.safe_dump(_profile(tmp_path, mirror)))
    cmd = [str(SNAKEMAKE), "results/tables/table3.tex", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--cores", "2", "--configfile", str(tmp_path / "amazon.yaml")]
    # the profile's mirror holds the generated files: CI's CEL_DATA_MIRROR (MovieLens) must not replace it
    env = {k: v for k, v in os.environ.items() if k != "CEL_DATA_MIRROR"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # Electronics goes through the same rules: with every dataset allowed, the dry run plans
    # exactly its chain (fetch, prepare, variant, split, its runs) and the table again
    dry = subprocess.run(cmd + ["-n", "--config", "only_datasets="], capture_output=True, text=True, timeout=300,
                         env=env)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    for rule, count in (("download_archive", 1), ("prepare_dataset", 1), ("make_variant", 1), ("make_split", 1),
                        ("train_run", 2), ("make_table", 1)):
        assert re.search(rf"^{rule}\s+{count}$", dry.stdout, re.M), (rule, dry.stdout[-2000:])
    assert "amazon-electronics.zip" in dry.stdout and "amazon-video-games.zip" not in dry.stdout
    res = tmp_path / "results"
    for name, (kind, cat) in list(CATS.items())[:1]:
        meta = json.loads((res / "data" / name / "prepared" / "meta.json").read_text())
        assert meta["users"] == 40 and meta["items"] == 30 and meta["archive"] == f"{kind}.zip"
        items = pd.read_parquet(res / "data" / name / "prepared" / "items.parquet")
        assert (items["brand"] == "").sum() > 0 and (items["genres"] == "").sum() > 0     # missing brand, no category
        assert json.loads((res / "data" / name / "online" / "split.json").read_text())["kind"] == "chrono"
        for method, cr in (("full", "100"), ("cel_lite", "100")):
            rec = json.loads((res / "runs" / "conversion" / name / "online" / "deepfm" / method / f"cr{cr}" / "f0" / "s0"
                              / "metrics.json").read_text())
            assert 0.0 <= rec["metrics"]["test_auc"] <= 1.0 and "progressive_auc" in rec["metrics"]
    assert len(read_lock(tmp_path / "archives")) == 2 and (tmp_path / "archives" / LOCK_NAME).exists()
    cells = pd.read_csv(res / "tables" / "table3.csv")
    got = cells.dropna(subset=["mean"])
    assert set(got["dataset"]) == {"video_games"} and set(got["method"]) == {"full", "cel_lite"} and len(got) == 2
    tex = (res / "tables" / "table3.tex").read_text()
    # a dataset without runs shows no paper-only column (Electronics was not run here)
    assert "Video Games" in tex and "Electronics" not in tex
