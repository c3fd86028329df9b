"""Data layer: fetching + checksums, parsers, prepared tables, variants, splits, synthetic data.

ML-1m ratings and ML-10m are not on the test machines: their code paths run on tiny archives in
the exact formats, built by ``data_fixtures``. Real ML-100k is used when it is present.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cel.data.prepare as prepare_mod
from cel.config import load_config
from cel.runkey import RunKey
from cel.data import pipeline
from cel.data.fetch import ChecksumError, DataError, digest, fetch_archive, read_member
from cel.data.parsers import PARSERS, parse_items_dat, parse_items_100k, parse_ratings
from cel.data.prepare import load_raw, prepare_dataset
from cel.data.sources import SOURCES, Checksum, Member
from cel.data.splits import FoldData, kfold_assignment
from cel.data.synthetic import SyntheticSpec, generate
from cel.data.variants import make_variant, per_user_keep_mask

import data_fixtures as fx


def _half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


# =========================================================================== checksums
def test_checksum_mismatch_names_file_expected_and_actual(tmp_path):
    good, bad = b"1::1::5::978300760\n", b"1::1::4::978300760\n"
    zpath = fx.write_zip(tmp_path / "ml-1m.zip", {"ml-1m/ratings.dat": bad})
    expected = hashlib.sha256(good).hexdigest()
    actual = hashlib.sha256(bad).hexdigest()
    member = Member("ml-1m/ratings.dat", Checksum("sha256", expected))
    with pytest.raises(ChecksumError) as exc:
        read_member(zpath, member)
    msg = str(exc.value)
    assert "ml-1m.zip:ml-1m/ratings.dat" in msg
    assert expected in msg and actual in msg
    assert (exc.value.expected, exc.value.actual) == (expected, actual)
    assert isinstance(exc.value, DataError)


def test_checksum_mismatch_git_blob(tmp_path):
    data = b"1::1::4::978300760\n"
    zpath = fx.write_zip(tmp_path / "x.zip", {"d/ratings.dat": data})
    wrong = "0" * 40
    with pytest.raises(ChecksumError) as exc:
        read_member(zpath, Member("d/ratings.dat", Checksum("git-blob", wrong)))
    msg = str(exc.value)
    assert "x.zip:d/ratings.dat" in msg and f"git-blob {wrong}" in msg
    assert digest(data, "git-blob") in msg           # the actual hash in the same algorithm


def test_read_member_returns_bytes_and_sha256_when_checksum_matches(tmp_path):
    data = "1::Café (1995)::Drama\n".encode("latin-1")
    zpath = fx.write_zip(tmp_path / "a.zip", {"m/movies.dat": data})
    for algo in ("sha256", "git-blob"):
        got, sha = read_member(zpath, Member("m/movies.dat", Checksum(algo, digest(data, algo))))
        assert got == data
        assert sha == hashlib.sha256(data).hexdigest()


def test_real_ml1m_sources_reject_generated_ratings(tmp_path):
    """The project's own ML-1m entry checks ratings.dat against the published git blob id."""
    zpath, _ = fx.ml1m_archive(tmp_path)
    with pytest.raises(ChecksumError) as exc:
        read_member(zpath, SOURCES["ml-1m"].members["ratings"])
    assert "ml-1m.zip:ml-1m/ratings.dat" in str(exc.value)
    assert "git-blob 77a7c4b150f588c23bb9e1f068aa996c0b413695" in str(exc.value)


def test_unknown_checksum_refused_unless_allowed(tmp_path, capsys):
    data = b"1::2::3.5::4\n"
    zpath = fx.write_zip(tmp_path / "ml-10m.zip", {"ml-10M100K/ratings.dat": data})
    member = SOURCES["ml-10m"].members["ratings"]
    assert member.checksum is None
    with pytest.raises(DataError) as exc:
        read_member(zpath, member, require_checksum=True)
    assert "ml-10m.zip:ml-10M100K/ratings.dat" in str(exc.value)
    assert "require_checksums" in str(exc.value)
    got, sha = read_member(zpath, member, require_checksum=False)
    assert got == data and sha == hashlib.sha256(data).hexdigest()
    assert sha in capsys.readouterr().err            # the unverified hash is reported


def test_member_missing_from_archive(tmp_path):
    zpath = fx.write_zip(tmp_path / "ml-1m.zip", {"ml-1m/movies.dat": b"1::A::B\n"})
    with pytest.raises(DataError, match=re.escape("ml-1m.zip:ml-1m/ratings.dat: member missing")):
        read_member(zpath, Member("ml-1m/ratings.dat", None), require_checksum=False)


def test_not_a_zip(tmp_path):
    p = tmp_path / "ml-1m.zip"
    p.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="not a valid zip archive"):
        read_member(p, Member("ml-1m/ratings.dat", None), require_checksum=False)


@pytest.mark.parametrize("data", [
    b"",
    b"hello\n",
    "Misérables\r\n".encode("latin-1"),
    bytes(range(256)) * 3,
])
def test_git_blob_digest_equals_git_hash_object(tmp_path, data):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    ref = subprocess.run([git, "hash-object", "--no-filters", str(f)], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", ref)
    assert digest(data, "git-blob") == ref


def test_digest_unknown_algorithm():
    with pytest.raises(ValueError, match="md5"):
        digest(b"x", "md5")


# =========================================================================== fetching
def test_missing_archive_in_mirror_says_where_and_how(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archives = tmp_path / "archives"
    src = SOURCES["ml-1m"]
    with pytest.raises(DataError) as exc:
        fetch_archive(src, archives, str(mirror))
    msg = str(exc.value)
    assert str((mirror / "ml-1m.zip").resolve()) in msg
    assert "CEL_DATA_MIRROR" in msg
    assert src.url in msg
    assert not archives.exists() or list(archives.iterdir()) == []


def test_archive_copied_from_mirror_then_reused(tmp_path):
    mirror = tmp_path / "mirror"
    zpath, src = fx.ml1m_archive(mirror)
    archives = tmp_path / "archives"
    dest = fetch_archive(src, archives, str(mirror))
    assert dest == archives / "ml-1m.zip"
    assert dest.read_bytes() == zpath.read_bytes()
    assert sorted(p.name for p in archives.iterdir()) == ["ml-1m.zip"]   # no temp file left
    zpath.unlink()                                  # already in place: the mirror is not needed
    assert fetch_archive(src, archives, str(mirror)) == dest


def test_no_mirror_no_network(tmp_path, monkeypatch):
    calls = []

    def offline(url, *a, **k):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    archives = tmp_path / "archives"
    src = SOURCES["ml-100k"]
    with pytest.raises(DataError) as exc:
        fetch_archive(src, archives, None)
    msg = str(exc.value)
    assert calls == [src.url]
    assert src.url in msg
    assert "CEL_DATA_MIRROR" in msg
    assert "ml-100k.zip" in msg
    assert list(archives.iterdir()) == []           # no partial / temporary file left behind


def test_download_cut_halfway_leaves_no_partial_file(tmp_path, monkeypatch):
    class Resp:
        def __init__(self):
            self.n = 0

        def read(self, size=-1):
            self.n += 1
            if self.n == 1:
                return b"PK\x03\x04" + b"\0" * 1000
            raise ConnectionResetError("connection reset by peer")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: Resp())
    archives = tmp_path / "archives"
    with pytest.raises(DataError, match="CEL_DATA_MIRROR"):
        fetch_archive(SOURCES["ml-1m"], archives, None)
    assert list(archives.iterdir()) == []


def test_download_writes_the_archive(tmp_path, monkeypatch):
    zpath, src = fx.ml1m_archive(tmp_path / "made")      # a well-formed archive of the expected members
    payload = zpath.read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: io.BytesIO(payload))
    dest = fetch_archive(src, tmp_path / "archives", None)
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["ml-1m.zip"]


def test_offline_without_archive(tmp_path):
    with pytest.raises(DataError, match="downloads are off"):
        fetch_archive(SOURCES["ml-1m"], tmp_path / "archives", None, offline=True)


# =========================================================================== parsers
GOOD_TAB = "1\t10\t3\t881250949"
GOOD_DAT = "1::10::3::881250949"


def _with_bad_line(good: str, bad: str) -> tuple[bytes, int]:
    """good, good, blank, BAD, good: the bad line is physical line 4 (blank lines count)."""
    text = "\n".join([good, good.replace("1", "2", 1), "", bad, good.replace("1", "7", 1)]) + "\n"
    return text.encode("latin-1"), 4


@pytest.mark.parametrize("sep, good, bad, why", [
    ("\t", GOOD_TAB, "5\t20\t4", "found 3"),                       # too few fields
    ("\t", GOOD_TAB, "5\t20\t4\t881250949\t9", "found 5"),         # too many fields
    ("\t", GOOD_TAB, "5\tabc\t4\t881250949", "'abc'"),             # non-numeric item
    ("\t", GOOD_TAB, "5\t20\tfour\t881250949", "'four'"),          # non-numeric rating
    ("\t", GOOD_TAB, "5\t20\t6\t881250949", "outside (0, 5]"),     # rating too high
    ("\t", GOOD_TAB, "5\t20\t0\t881250949", "outside (0, 5]"),     # rating zero
    ("::", GOOD_DAT, "5::20::4", "found 3"),
    ("::", GOOD_DAT, "5::20::4::881250949::1", "found 5"),
    ("::", GOOD_DAT, "x5::20::4::881250949", "'x5'"),
    ("::", GOOD_DAT, "5::20::3.5::88125o949", "'88125o949'"),      # non-numeric timestamp
    ("::", GOOD_DAT, "5::20::5.5::881250949", "outside (0, 5]"),
    ("::", GOOD_DAT, "5::20::-1::881250949", "outside (0, 5]"),
])
def test_malformed_rating_line_names_file_and_line(sep, good, bad, why):
    data, line_no = _with_bad_line(good, bad)
    name = "arch.zip:ml/ratings.file"
    with pytest.raises(DataError) as exc:
        parse_ratings(data, name, sep)
    msg = str(exc.value)
    assert msg.startswith(f"{name}, line {line_no}:"), msg
    assert repr(bad) in msg and why in msg


@pytest.mark.parametrize("bad, why", [
    ("4::Title Without Genres (1999)", "found 2"),
    ("4::A::B::C", "found 4"),
    ("four::Title (1999)::Drama", "'four'"),
])
def test_malformed_movies_line_names_file_and_line(bad, why):
    good = "1::Toy Story (1995)::Animation"
    data = "\n".join([good, "2::Café (1995)::Drama", "", bad, "3::X (1990)::Drama"]).encode("latin-1")
    with pytest.raises(DataError) as exc:
        parse_items_dat(data, "ml-1m.zip:ml-1m/movies.dat")
    msg = str(exc.value)
    assert msg.startswith("ml-1m.zip:ml-1m/movies.dat, line 4:"), msg
    assert why in msg


def test_malformed_u_item_line_names_file_and_line():
    flags = "|".join(["0"] * 19)
    good = f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags}"
    bad = f"2|Short (1995)|01-Jan-1995||http://x|{'|'.join(['0'] * 18)}"
    data = "\n".join([good, good, bad]).encode("latin-1")
    with pytest.raises(DataError, match=re.escape("ml-100k.zip:ml-100k/u.item, line 3:")):
        parse_items_100k(data, "ml-100k.zip:ml-100k/u.item")


def test_u_data_and_u_item_parse():
    flags = ["0"] * 19
    flags[1], flags[5] = "1", "1"                     # Action, Comedy
    items = f"7|Amélie (2001)|01-Jan-2001||http://x|{'|'.join(flags)}\n".encode("latin-1")
    ratings = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
    inter, meta = PARSERS["ml-100k"](ratings, items, ("r", "i"))
    assert inter["raw_user"].tolist() == [196, 186, 22]
    assert inter["raw_item"].tolist() == [242, 302, 377]
    assert inter["rating"].tolist() == [3.0, 3.0, 1.0]
    assert inter["timestamp"].tolist() == [881250949, 891717742, 878887116]
    assert meta.to_dict("records") == [{"raw_item": 7, "title": "Amélie (2001)", "genres": "Action|Comedy"}]


def test_ml1m_parser_on_generated_files():
    ratings, movies = fx.ratings_dat(fx.ML1M_RATINGS), fx.movies_dat(fx.ML1M_MOVIES)
    assert "Café".encode("latin-1") in movies and "Café".encode("utf-8") not in movies
    inter, items = PARSERS[SOURCES["ml-1m"].parser](ratings, movies, ("r", "m"))
    assert len(inter) == len(fx.ML1M_RATINGS) == 8
    assert list(inter.columns) == ["raw_user", "raw_item", "rating", "timestamp"]
    assert inter["rating"].dtype == np.float64
    assert list(inter.itertuples(index=False, name=None)) == [
        (u, i, float(r), t) for u, i, r, t in fx.ML1M_RATINGS]
    assert len(items) == 5
    by_id = items.set_index("raw_item")
    assert by_id.loc[2, "title"] == "Café Society (1995)"
    assert by_id.loc[3, "title"] == "Misérables, Les (1995)"
    assert by_id.loc[7, "title"] == "Amélie (2001)"
    assert by_id.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert by_id.loc[3, "genres"].split("|") == ["Drama", "Musical"]


def test_ml10m_parser_on_generated_archive(tmp_path):
    """Through the project's own ML-10m entry (member paths ml-10M100K/...)."""
    zpath, ratings, movies = fx.ml10m_archive(tmp_path / "mirror")
    inter, items, prov = load_raw("ml-10m", {"kind": "ml-10m"}, tmp_path / "archives",
                                  str(tmp_path / "mirror"), require_checksums=False)
    assert len(inter) == 6 and len(items) == 5
    assert inter["rating"].tolist() == [5.0, 3.5, 0.5, 4.5, 3.0, 2.5]
    assert inter["rating"].dtype == np.float64
    assert inter["raw_user"].tolist() == [1, 1, 2, 2, 2, 7]
    assert inter["raw_item"].tolist() == [122, 185, 122, 292, 316, 185]
    by_id = items.set_index("raw_item")
    assert by_id.loc[329, "title"] == "Élite Squad (2007)"
    assert by_id.loc[292, "genres"] == "Action|Drama|Sci-Fi|Thriller"
    assert by_id.loc[329, "genres"] == "(no genres listed)"
    assert prov["sha256"] == {"ml-10M100K/ratings.dat": hashlib.sha256(ratings).hexdigest(),
                              "ml-10M100K/movies.dat": hashlib.sha256(movies).hexdigest()}


@pytest.mark.parametrize("sep, data, line", [
    ("::", b"1::2::3::4\n5\t6::4::8\n", 2),        # a tab instead of '::' on line 2
    ("::", b"1\t2\t3\t4\n5\t6\t4\t8\n", 1),        # u.data format given as ratings.dat
    ("\t", b'1\t2\t3\t4\n"5"\t6\t4\t8\n', 2),       # quoted user id
])
def test_fast_path_rejects_what_the_validating_parser_rejects(sep, data, line):
    with pytest.raises(DataError, match=rf"^f, line {line}:"):
        parse_ratings(data, "f", sep)


def test_movies_title_with_byte_0x85_is_one_line():
    data = b"1::Toy Story (1995)::Animation\n2::Wait\x85 What (1999)::Comedy\n"
    items = parse_items_dat(data, "movies.dat")
    assert items["title"].tolist() == ["Toy Story (1995)", "Wait\x85 What (1999)"]


def test_ratings_with_crlf_and_blank_lines():
    data = b"1::2::3.5::10\r\n\r\n3::4::1::11\r\n"
    inter = parse_ratings(data, "f", "::")
    assert inter.values.tolist() == [[1, 2, 3.5, 10], [3, 4, 1.0, 11]]


def test_empty_ratings_file():
    with pytest.raises(DataError, match="^f: no rating lines"):
        parse_ratings(b"\n\n", "f", "::")


def test_real_ml1m_movies_dat():
    """The staged ML-1m movies.dat (without ratings): verified checksum, 3,883 movies."""
    z = fx.DEFAULT_MIRROR / "ml-1m_partial_no-ratings_repacked.zip"
    if not z.exists():
        pytest.skip(f"{z} not staged")
    data, _ = read_member(z, SOURCES["ml-1m"].members["items"])
    items = parse_items_dat(data, "movies.dat")
    assert len(items) == 3883 and items["raw_item"].max() == 3952
    assert items["raw_item"].is_unique
    assert not items["title"].str.contains("Ã").any()   # decoded as latin-1, not mojibake
    assert items["title"].str.contains("é").any()


# =========================================================================== prepare
def _prepare_generated_ml1m(tmp_path, monkeypatch, **kw):
    mirror = tmp_path / "mirror"
    _, src = fx.ml1m_archive(mirror, **kw)
    # prepare.py binds the SOURCES dict itself (from ... import SOURCES): patch that dict
    assert prepare_mod.SOURCES is SOURCES
    monkeypatch.setitem(prepare_mod.SOURCES, "ml-1m", src)
    out = tmp_path / "prepared"
    info = prepare_dataset("ml-1m", {"kind": "ml-1m"}, out, tmp_path / "archives", str(mirror))
    return info, out, src


def test_prepare_generated_ml1m_end_to_end(tmp_path, monkeypatch):
    info, out, src = _prepare_generated_ml1m(tmp_path, monkeypatch)
    assert sorted(p.name for p in out.iterdir()) == ["interactions.parquet", "items.parquet", "meta.json"]
    assert (tmp_path / "archives" / "ml-1m.zip").exists()
    inter = pd.read_parquet(out / "interactions.parquet")
    items = pd.read_parquet(out / "items.parquet")
    meta = json.loads((out / "meta.json").read_text())

    assert list(inter.columns) == ["user", "item", "rating", "timestamp"]
    assert sorted(inter["user"].unique()) == [0, 1, 2]             # raw 1, 3, 10
    assert sorted(inter["item"].unique()) == [0, 1, 2, 3, 4]       # raw 1, 2, 3, 7, 9
    user_of = {1: 0, 3: 1, 10: 2}
    item_of = {1: 0, 2: 1, 3: 2, 7: 3, 9: 4}
    assert list(inter.itertuples(index=False, name=None)) == [
        (user_of[u], item_of[i], float(r), t) for u, i, r, t in fx.ML1M_RATINGS]

    assert items["item"].tolist() == [0, 1, 2, 3, 4]
    assert items["raw_item"].tolist() == [1, 2, 3, 7, 9]          # movie 5 (no rating) dropped
    assert items["title"].tolist() == ["Toy Story (1995)", "Café Society (1995)",
                                       "Misérables, Les (1995)", "Amélie (2001)", ""]
    assert items.loc[3, "genres"] == "Comedy|Romance"

    assert meta == info
    assert (meta["users"], meta["items"], meta["interactions"]) == (3, 5, 8)
    assert meta["dataset"] == "ml-1m" and meta["archive"] == "ml-1m.zip" and meta["source"] == src.url
    with zipfile.ZipFile(tmp_path / "mirror" / "ml-1m.zip") as zf:
        assert meta["sha256"] == {m: hashlib.sha256(zf.read(m)).hexdigest()
                                  for m in ("ml-1m/ratings.dat", "ml-1m/movies.dat")}


def test_prepare_malformed_archive_names_member_and_line(tmp_path, monkeypatch):
    ratings = fx.ratings_dat(fx.ML1M_RATINGS[:2]) + b"3::1::4\n" + fx.ratings_dat(fx.ML1M_RATINGS[2:])
    with pytest.raises(DataError) as exc:
        _prepare_generated_ml1m(tmp_path, monkeypatch, ratings=ratings)
    assert str(exc.value).startswith("ml-1m.zip:ml-1m/ratings.dat, line 3:")
    assert not (tmp_path / "prepared" / "interactions.parquet").exists()


def test_prepare_rejects_duplicated_pairs(tmp_path, monkeypatch):
    rows = fx.ML1M_RATINGS + [(3, 2, 5, 978824999)]
    with pytest.raises(DataError, match="1 duplicated"):
        _prepare_generated_ml1m(tmp_path, monkeypatch, ratings=fx.ratings_dat(rows))


def test_prepare_checksum_mismatch_stops_before_output(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    _, src = fx.ml1m_archive(mirror)
    # same member list, but the archive in the mirror has different ratings bytes
    fx.write_zip(mirror / "ml-1m.zip", {"ml-1m/ratings.dat": b"1::1::1::1\n",
                                        "ml-1m/movies.dat": fx.movies_dat(fx.ML1M_MOVIES)})
    monkeypatch.setitem(prepare_mod.SOURCES, "ml-1m", src)
    with pytest.raises(ChecksumError, match=re.escape("ml-1m.zip:ml-1m/ratings.dat")):
        prepare_dataset("ml-1m", {"kind": "ml-1m"}, tmp_path / "out", tmp_path / "archives", str(mirror))
    assert not (tmp_path / "out").exists()


def test_prepare_ml10m_requires_checksums_by_default(tmp_path):
    fx.ml10m_archive(tmp_path / "mirror")
    with pytest.raises(DataError, match="require_checksums"):
        prepare_dataset("ml-10m", {"kind": "ml-10m"}, tmp_path / "out", tmp_path / "archives",
                        str(tmp_path / "mirror"))
    info = prepare_dataset("ml-10m", {"kind": "ml-10m"}, tmp_path / "out", tmp_path / "archives",
                           str(tmp_path / "mirror"), require_checksums=False)
    assert (info["users"], info["items"], info["interactions"]) == (3, 4, 6)   # movie 329 unrated
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    assert items["raw_item"].tolist() == [122, 185, 292, 316]


def test_config_mirror_env_overrides_and_drives_prepare(tmp_path, monkeypatch, profile_path):
    cfg_mirror = tmp_path / "cfg_mirror"
    env_mirror = tmp_path / "env_mirror"
    _, src = fx.ml1m_archive(env_mirror)
    monkeypatch.setitem(prepare_mod.SOURCES, "ml-1m", src)
    datasets = {"synth": {"kind": "synthetic", "users": 120, "items": 80, "clusters": 4, "rank": 3,
                          "density": 0.15, "noise": 0.05, "popularity": 0.5, "seed": 1},
                "gen1m": {"kind": "ml-1m"}}
    cfg = load_config(profile_path(datasets=datasets, data={"mirror": str(cfg_mirror)}))
    monkeypatch.delenv("CEL_DATA_MIRROR", raising=False)
    assert cfg.mirror == str(cfg_mirror) and cfg.require_checksums is True
    with pytest.raises(DataError, match=re.escape(str((cfg_mirror / "ml-1m.zip").resolve()))):
        pipeline.run_prepare(cfg, "gen1m")
    monkeypatch.setenv("CEL_DATA_MIRROR", str(env_mirror))
    assert cfg.mirror == str(env_mirror)
    pipeline.run_prepare(cfg, "gen1m")
    meta = json.loads((cfg.results_dir / "data" / "gen1m" / "prepared" / "meta.json").read_text())
    assert (meta["users"], meta["items"], meta["interactions"]) == (3, 5, 8)


def test_real_ml100k(tmp_path):
    mirror = fx.real_mirror()
    if not (mirror / "ml-100k.zip").exists():
        pytest.skip(f"{mirror / 'ml-100k.zip'} not available")
    out = tmp_path / "prepared"
    info = prepare_dataset("ml-100k", {"kind": "ml-100k"}, out, tmp_path / "archives", str(mirror))
    inter = pd.read_parquet(out / "interactions.parquet")
    items = pd.read_parquet(out / "items.parquet")
    assert len(inter) == 100_000
    assert inter["user"].nunique() == 943 and inter["user"].min() == 0 and inter["user"].max() == 942
    assert inter["item"].nunique() == 1682 and inter["item"].min() == 0 and inter["item"].max() == 1681
    assert (info["users"], info["items"], info["interactions"]) == (943, 1682, 100_000)
    hist = inter["rating"].value_counts().sort_index()
    assert hist.to_dict() == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert len(items) == 1682 and (items["title"] != "").all()
    assert items.loc[0, "title"] == "Toy Story (1995)"
    assert info["sha256"] == {
        "ml-100k/u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "ml-100k/u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    }
    assert not inter.duplicated(["user", "item"]).any()


# =========================================================================== variants
def _dense_frame():
    """threshold 2. Users 0,1 (3 each) and 3 (4) stay, user 2 (2) goes; items 0,2,4 (3 each) stay,
    items 1 (2) and 3 (1) go. After the drop user 3 and item 0 have only 2 left but stay (one pass)."""
    rows = [
        (0, 0), (0, 2), (0, 4),
        (1, 0), (1, 2), (1, 4),
        (2, 0), (2, 1),
        (3, 2), (3, 4), (3, 1), (3, 3),
    ]
    inter = pd.DataFrame(rows, columns=["user", "item"])
    inter["rating"] = np.arange(1, len(rows) + 1) / 4.0           # unique: identifies the row
    inter["timestamp"] = np.arange(len(rows), dtype=np.int64) + 100
    items = pd.DataFrame({"item": np.arange(5), "raw_item": [10, 11, 12, 13, 14],
                          "title": [f"t{j}" for j in range(5)], "genres": ""})
    return inter, items


def test_dense_variant_one_pass_and_remap():
    inter, items = _dense_frame()
    out, its = make_variant(inter, items, {"kind": "dense", "threshold": 2})
    kept = inter.iloc[[0, 1, 2, 3, 4, 5, 8, 9]]
    assert out["rating"].tolist() == kept["rating"].tolist()
    user_of, item_of = {0: 0, 1: 1, 3: 2}, {0: 0, 2: 1, 4: 2}
    assert out["user"].tolist() == [user_of[u] for u in kept["user"]]
    assert out["item"].tolist() == [item_of[i] for i in kept["item"]]
    assert out["train_ok"].all()
    assert its["item"].tolist() == [0, 1, 2]
    assert its["base_item"].tolist() == [0, 2, 4]
    assert its["raw_item"].tolist() == [10, 12, 14] and its["title"].tolist() == ["t0", "t2", "t4"]
    # one pass: the counts are those of the original data, not re-computed after the drop
    assert (out["user"] == 2).sum() == 2 and (out["item"] == 0).sum() == 2


def test_dense_variant_threshold_too_high():
    inter, items = _dense_frame()
    with pytest.raises(ValueError, match="threshold 4"):
        make_variant(inter, items, {"kind": "dense", "threshold": 4})


def _random_frame(n_users=40, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        k = 1 + (u % 9)                                           # 1..9 interactions per user
        for i in rng.choice(n_items, k, replace=False):
            rows.append((u, int(i)))
    inter = pd.DataFrame(rows, columns=["user", "item"])
    inter["rating"] = rng.integers(1, 6, len(inter)).astype(float)
    inter["timestamp"] = np.arange(len(inter), dtype=np.int64)
    used = np.sort(inter["item"].unique())
    inter["item"] = np.searchsorted(used, inter["item"])
    items = pd.DataFrame({"item": np.arange(len(used)), "raw_item": used, "title": "", "genres": ""})
    return inter, items


def test_sparse_variant_keeps_half_per_user():
    inter, items = _random_frame()
    out, its = make_variant(inter, items, {"kind": "sparse", "drop_fraction": 0.5, "seed": 3})
    n = inter.groupby("user").size()
    kept = out.groupby("user").size()
    assert len(kept) == len(n)                                    # every user keeps >= 1
    assert kept.tolist() == [max(1, _half_up(c * 0.5)) for c in n.tolist()]
    assert (kept >= 1).all()
    assert len(out) < len(inter)
    # ids contiguous, rows are real rows of the input (timestamps identify them)
    assert sorted(out["user"].unique()) == list(range(out["user"].max() + 1))
    assert sorted(out["item"].unique()) == list(range(len(its)))
    orig = inter.set_index("timestamp")
    assert (orig.loc[out["timestamp"], "rating"].to_numpy() == out["rating"].to_numpy()).all()
    assert (its.set_index("item").loc[out["item"], "base_item"].to_numpy()
            == orig.loc[out["timestamp"], "item"].to_numpy()).all()


def test_per_user_keep_mask_counts():
    users = np.repeat(np.arange(6), [1, 2, 3, 4, 5, 10])
    mask = per_user_keep_mask(users, 0.3, np.random.default_rng(0))
    assert np.bincount(users[mask], minlength=6).tolist() == [1, 1, 1, 1, 2, 3]


def test_train_density_marks_fraction_per_user():
    inter, items = _random_frame()
    out, its = make_variant(inter, items, {"kind": "train_density", "fraction": 0.5, "seed": 1})
    pd.testing.assert_frame_equal(out.drop(columns="train_ok"), inter)       # every row kept
    assert its is items
    per_user = out.groupby("user")["train_ok"].agg(["sum", "size"])
    assert per_user["sum"].tolist() == [max(1, _half_up(s * 0.5)) for s in per_user["size"]]
    assert (per_user["sum"] >= 1).all()
    assert 0.4 < out["train_ok"].mean() < 0.7


def test_original_variant_adds_train_ok_only():
    inter, items = _random_frame()
    out, its = make_variant(inter, items, {"kind": "original"})
    assert out["train_ok"].all()
    pd.testing.assert_frame_equal(out.drop(columns="train_ok"), inter)
    assert "train_ok" not in inter.columns                                    # input not mutated


@pytest.mark.parametrize("spec", [
    {"kind": "sparse", "drop_fraction": 0.5},
    {"kind": "train_density", "fraction": 0.5},
])
def test_variants_deterministic_per_seed(spec):
    inter, items = _random_frame()
    a, _ = make_variant(inter, items, {**spec, "seed": 7})
    b, _ = make_variant(inter, items, {**spec, "seed": 7})
    c, _ = make_variant(inter, items, {**spec, "seed": 8})
    pd.testing.assert_frame_equal(a, b)
    key = (lambda f: f["timestamp"].tolist()) if spec["kind"] == "sparse" else (lambda f: f["train_ok"].tolist())
    assert key(a) != key(c)


def test_unknown_variant():
    inter, items = _random_frame()
    with pytest.raises(ValueError, match="unknown variant kind 'bogus'"):
        make_variant(inter, items, {"kind": "bogus"})


# =========================================================================== splits
def test_kfold_sizes_and_seed():
    n = 1003
    a = kfold_assignment(n, 5, seed=0)
    assert a.shape == (n,) and set(np.unique(a)) == {0, 1, 2, 3, 4}
    sizes = np.bincount(a, minlength=5)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    assert sorted(sizes.tolist()) == [200, 200, 201, 201, 201]
    assert np.all(np.abs(sizes / n - 0.2) < 0.01)
    assert np.array_equal(a, kfold_assignment(n, 5, seed=0))
    b = kfold_assignment(n, 5, seed=1)
    assert not np.array_equal(a, b)
    assert sorted(np.bincount(b, minlength=5).tolist()) == [200, 200, 201, 201, 201]
    assert (a[:20] != np.arange(20) % 5).any()                               # shuffled, not in order


def test_fold_data_from_tables():
    inter, _ = _random_frame()
    inter["train_ok"] = np.arange(len(inter)) % 3 != 0
    folds = kfold_assignment(len(inter), 5, seed=2)
    for k in range(5):
        fd = FoldData.from_tables(inter, folds, k, n_users=40, n_items=30)
        assert (fd.n_users, fd.n_items) == (40, 30)
        assert list(fd.test.columns) == ["user", "item", "rating", "timestamp"]
        expected_test = inter.loc[folds == k, ["user", "item", "rating", "timestamp"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(fd.test, expected_test)              # test keeps train_ok=False rows
        expected_train = inter.loc[(folds != k) & inter["train_ok"].to_numpy(),
                                   ["user", "item", "rating", "timestamp"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(fd.train, expected_train)
        assert set(fd.train["timestamp"]).isdisjoint(fd.test["timestamp"])
        excluded = set(inter.loc[~inter["train_ok"], "timestamp"])
        assert excluded.isdisjoint(fd.train["timestamp"])
        assert len(fd.test) + len(fd.train) + ((folds != k) & ~inter["train_ok"].to_numpy()).sum() == len(inter)


def test_pipeline_fold_on_synthetic(profile_path):
    cfg = load_config(profile_path())
    spec = RunKey("regression", "synth", "original", "nmf", "full", "100", 0)
    data, h = pipeline.load_fold(cfg, spec)                 # builds prepare -> variant -> split
    vdir = cfg.results_dir / "data" / "synth" / "original"
    n = len(pd.read_parquet(vdir / "interactions.parquet"))
    split = json.loads((vdir / "split.json").read_text())
    assert split["folds"] == 5 and sum(split["sizes"]) == n
    assert len(data.test) == split["sizes"][0] and len(data.train) == n - split["sizes"][0]
    meta = json.loads((cfg.results_dir / "data" / "synth" / "prepared" / "meta.json").read_text())
    assert meta["interactions"] == n == round(0.15 * 120 * 80)
    assert (data.n_users, data.n_items) == (meta["users"], meta["items"])
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert pipeline.load_fold(cfg, spec)[1] == h
    assert pipeline.load_fold(cfg, RunKey("regression", "synth", "original", "nmf", "full", "100", 1))[1] != h


# =========================================================================== synthetic
SPEC = SyntheticSpec(users=101, items=37, clusters=5, rank=4, density=0.1, noise=0.0, popularity=1.0, seed=3)


def test_synthetic_counts_and_uniqueness():
    inter, items = generate(SPEC)
    assert len(inter) == round(0.1 * 101 * 37) == 374                     # 373.7 rounded
    assert not inter.duplicated(["raw_user", "raw_item"]).any()
    assert inter["raw_user"].between(0, 100).all() and inter["raw_item"].between(0, 36).all()
    assert list(items.columns) == ["raw_item", "title", "genres", "cluster"]
    assert items["raw_item"].tolist() == list(range(37))
    assert sorted(items["cluster"].unique()) == [0, 1, 2, 3, 4]
    assert (items["cluster"].value_counts() >= 1).all()


def test_synthetic_every_cluster_nonempty_even_when_clusters_equal_items():
    _, items = generate(SyntheticSpec(users=20, items=6, clusters=6, rank=2, density=0.5, seed=0))
    assert sorted(items["cluster"]) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="clusters"):
        generate(SyntheticSpec(users=20, items=6, clusters=7))


def test_synthetic_follows_planted_clusters():
    inter, items = generate(SPEC)                                            # noise = 0
    df = inter.assign(cluster=items["cluster"].to_numpy()[inter["raw_item"]])
    spread = df.groupby(["raw_user", "cluster"])["rating"].agg(["min", "max", "size"])
    multi = spread[spread["size"] >= 2]
    assert len(multi) >= 10
    assert np.allclose(multi["min"], multi["max"], rtol=0, atol=1e-12)
    # ... but different clusters give different ratings, and noise breaks the ties
    assert df.groupby("raw_user")["rating"].nunique().max() > 1
    noisy, _ = generate(SyntheticSpec(**{**SPEC.__dict__, "noise": 0.5}))
    nd = noisy.assign(cluster=items["cluster"].to_numpy()[noisy["raw_item"]])
    ns = nd.groupby(["raw_user", "cluster"])["rating"].agg(["min", "max", "size"])
    ns = ns[ns["size"] >= 2]
    assert (ns["max"] - ns["min"]).max() > 0.1
    assert 1.0 < inter["rating"].mean() < 6.0 and (inter["rating"] >= 0).all()   # NMF model, noise 0


def test_synthetic_popularity_skew():
    base = dict(users=400, items=200, clusters=8, rank=4, density=0.05, noise=0.1, seed=0)
    skew, _ = generate(SyntheticSpec(**base, popularity=1.0))
    flat, _ = generate(SyntheticSpec(**base, popularity=0.0))
    cs = np.bincount(skew["raw_item"], minlength=200)
    cf = np.bincount(flat["raw_item"], minlength=200)
    assert cs.max() > 10 * np.median(cs)
    assert cf.max() < 3 * np.median(cf)
    us = np.bincount(skew["raw_user"], minlength=400)
    assert us.max() > 10 * np.median(us)


def test_synthetic_high_density_tops_up_exactly():
    inter, _ = generate(SyntheticSpec(users=30, items=20, clusters=3, rank=2, density=0.9, popularity=2.0, seed=1))
    assert len(inter) == 540
    assert not inter.duplicated(["raw_user", "raw_item"]).any()


def test_synthetic_deterministic_per_seed():
    a_i, a_m = generate(SPEC)
    b_i, b_m = generate(SPEC)
    pd.testing.assert_frame_equal(a_i, b_i)
    pd.testing.assert_frame_equal(a_m, b_m)
    c_i, c_m = generate(SyntheticSpec(**{**SPEC.__dict__, "seed": 4}))
    assert len(c_i) == len(a_i)
    assert not (a_i[["raw_user", "raw_item"]].equals(c_i[["raw_user", "raw_item"]])
                and a_m["cluster"].equals(c_m["cluster"]))
    assert not np.allclose(a_i["rating"].to_numpy(), c_i["rating"].to_numpy())


def test_synthetic_spec_from_config_ignores_kind():
    spec = SyntheticSpec.from_config({"kind": "synthetic", "users": 5, "items": 4, "seed": 9})
    assert spec == SyntheticSpec(users=5, items=4, seed=9)
