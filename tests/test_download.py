"""A bad raw archive (truncated zip, HTML page, tampered member) never becomes a finished archive.

``fetch_archive`` copies/downloads into a temporary file next to the destination, verifies it and
only then renames it into place; an archive already in place is re-verified. End to end, the
Snakemake rule ``download_archive`` fails on a bad mirror and a plain rerun succeeds once the
mirror is fixed (before the fix, the bad archive stayed behind as a finished output).

Unit tests use generated archives with the ML-100k member names and a ``Source`` whose checksums
match them (``data_fixtures.make_source``); the end-to-end tests need the real ML-100k zip (the
Snakemake job runs the project's own ``SOURCES``) and are skipped without it.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

import data_fixtures as fx
from cel.data.fetch import ChecksumError, DataError, digest, fetch_archive, read_member, verify_archive
from cel.data.sources import SOURCES
from conftest import REPO, tiny_profile

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
REAL_ZIP = fx.real_mirror() / "ml-100k.zip"
needs_real = pytest.mark.skipif(not REAL_ZIP.exists(), reason=f"{REAL_ZIP} not available")

HTML = (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
        b"<body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>\n")


# ----------------------------------------------------------------------------- helpers
def _u_data(n: int = 4000) -> bytes:
    """u.data-like lines (tab-separated), varied enough not to compress to nothing."""
    return "".join(f"{1 + (k * 7) % 943}\t{1 + (k * 13) % 1682}\t{1 + k % 5}\t{881250949 + k * 37}\n"
                   for k in range(n)).encode("latin-1")


U_ITEM = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n".encode("latin-1")


def _fake_ml100k(mirror: Path, u_data: bytes | None = None):
    """``mirror/ml-100k.zip`` with the ML-100k member paths, and a Source whose checksums match it."""
    u_data = _u_data() if u_data is None else u_data
    zpath = fx.write_zip(mirror / "ml-100k.zip", {"ml-100k/u.data": u_data, "ml-100k/u.item": U_ITEM,
                                                  "ml-100k/README": b"generated for tests\n"})
    src = fx.make_source("ml-100k", "ml-100k.zip", {"ratings": ("ml-100k/u.data", u_data),
                                                     "items": ("ml-100k/u.item", U_ITEM)}, parser="ml-100k")
    return zpath, src


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _tampered_copy(good: Path, out: Path, member: str) -> None:
    """Rewrite ``good`` into ``out`` with one rating of ``member`` changed (a valid zip)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == member:
                first, rest = data.split(b"\n", 1)
                f = first.split(b"\t")
                f[2] = b"1" if f[2] != b"1" else b"2"
                data = b"\t".join(f) + b"\n" + rest
            zout.writestr(info, data)


def _leftovers(archives: Path) -> list[str]:
    """Everything in the archives dir, temporary files (hidden) included, except the workflow's
    profile-independent fetch config (``fetch.yaml``, written by common.smk)."""
    return sorted(p.name for p in archives.iterdir() if p.name != "fetch.yaml") if archives.exists() else []


# ----------------------------------------------------------------------------- the three bad mirrors
@pytest.mark.parametrize("real", [False, pytest.param(True, marks=needs_real)], ids=["generated", "real"])
def test_truncated_zip_in_mirror(tmp_path, real):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    if real:
        mirror.mkdir()
        zpath, src = mirror / "ml-100k.zip", SOURCES["ml-100k"]
        zpath.write_bytes(REAL_ZIP.read_bytes())
    else:
        zpath, src = _fake_ml100k(mirror)
    _truncate(zpath)
    with pytest.raises(DataError) as exc:
        fetch_archive(src, archives, str(mirror))
    msg = str(exc.value)
    assert not isinstance(exc.value, ChecksumError)
    assert msg.startswith(f"{zpath.resolve()} is not a valid zip archive: expected a zip holding ml-100k/u.data ")
    assert src.members["ratings"].checksum.value in msg                    # expected hash ...
    assert f"(sha256 {hashlib.sha256(zpath.read_bytes()).hexdigest()})" in msg   # ... and actual
    assert "the file is truncated" in msg
    assert f"replace {zpath.resolve()} with a good copy of ml-100k.zip" in msg
    assert src.url in msg and "CEL_DATA_MIRROR" in msg
    assert _leftovers(archives) == []


def test_html_page_in_mirror(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    mirror.mkdir()
    (mirror / "ml-100k.zip").write_bytes(HTML)
    with pytest.raises(DataError) as exc:
        fetch_archive(SOURCES["ml-100k"], archives, str(mirror))
    msg = str(exc.value)
    where = (mirror / "ml-100k.zip").resolve()
    assert msg.startswith(f"{where} is not a valid zip archive: expected a zip holding ml-100k/u.data ")
    assert SOURCES["ml-100k"].members["ratings"].checksum.value in msg
    assert f"(sha256 {hashlib.sha256(HTML).hexdigest()}) of an HTML page" in msg
    assert "404 Not Found" in msg                       # shows what the file actually is
    assert f"replace {where} with a good copy" in msg
    assert _leftovers(archives) == []


@pytest.mark.parametrize("real", [False, pytest.param(True, marks=needs_real)], ids=["generated", "real"])
def test_tampered_member_in_mirror(tmp_path, real):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    if real:
        src = SOURCES["ml-100k"]
        _tampered_copy(REAL_ZIP, mirror / "ml-100k.zip", "ml-100k/u.data")
    else:
        good, src = _fake_ml100k(tmp_path / "good")
        _tampered_copy(good, mirror / "ml-100k.zip", "ml-100k/u.data")
    with zipfile.ZipFile(mirror / "ml-100k.zip") as zf:
        actual = digest(zf.read("ml-100k/u.data"), "sha256")
    expected = src.members["ratings"].checksum.value
    assert actual != expected
    with pytest.raises(ChecksumError) as exc:
        fetch_archive(src, archives, str(mirror))
    msg = str(exc.value)
    where = (mirror / "ml-100k.zip").resolve()
    assert f"checksum mismatch for {where}:ml-100k/u.data: expected sha256 {expected}, got {actual}." in msg
    assert (exc.value.expected, exc.value.actual) == (expected, actual)
    assert f"replace {where} with a good copy" in msg
    assert _leftovers(archives) == []


# ----------------------------------------------------------------------------- other damage
def test_corrupt_member_bytes_fail_the_crc_check(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    mirror.mkdir()
    u_data = _u_data()
    zpath = mirror / "ml-100k.zip"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("ml-100k/u.data", u_data)
        zf.writestr("ml-100k/u.item", U_ITEM)
    raw = bytearray(zpath.read_bytes())
    i = raw.index(u_data[1000:1020])                   # flip one byte inside the stored u.data
    raw[i] ^= 0x01
    zpath.write_bytes(bytes(raw))
    assert zipfile.is_zipfile(zpath)
    src = fx.make_source("ml-100k", "ml-100k.zip", {"ratings": ("ml-100k/u.data", u_data),
                                                     "items": ("ml-100k/u.item", U_ITEM)}, parser="ml-100k")
    with pytest.raises(DataError, match=re.escape(f"{zpath.resolve()}:ml-100k/u.data")):
        fetch_archive(src, archives, str(mirror))
    assert _leftovers(archives) == []


def test_member_missing_from_mirror_copy(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    _, src = _fake_ml100k(tmp_path / "good")
    fx.write_zip(mirror / "ml-100k.zip", {"ml-100k/u.item": U_ITEM})
    with pytest.raises(DataError) as exc:
        fetch_archive(src, archives, str(mirror))
    assert f"{(mirror / 'ml-100k.zip').resolve()}:ml-100k/u.data" in str(exc.value)
    assert "missing" in str(exc.value)
    assert _leftovers(archives) == []


def test_empty_file_in_mirror(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    mirror.mkdir()
    (mirror / "ml-100k.zip").write_bytes(b"")
    with pytest.raises(DataError, match="is not a valid zip archive: expected a zip holding .*; got an empty file"):
        fetch_archive(SOURCES["ml-100k"], archives, str(mirror))
    assert _leftovers(archives) == []


def test_good_mirror_copy_lands_verified(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    zpath, src = _fake_ml100k(mirror)
    dest = fetch_archive(src, archives, str(mirror))
    assert dest == archives / "ml-100k.zip" and dest.read_bytes() == zpath.read_bytes()
    assert _leftovers(archives) == ["ml-100k.zip"]
    verify_archive(dest, src)


# ----------------------------------------------------------------------------- archive already in place
@pytest.mark.parametrize("bad", ["truncated", "html", "tampered"])
def test_bad_existing_archive_is_removed_and_fetched_again(tmp_path, bad, capsys):
    """The situation the bug left behind: a bad archive in the archives dir from an earlier run."""
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    zpath, src = _fake_ml100k(mirror)
    archives.mkdir()
    stale = archives / "ml-100k.zip"
    if bad == "truncated":
        stale.write_bytes(zpath.read_bytes()[:1000])
    elif bad == "html":
        stale.write_bytes(HTML)
    else:
        _tampered_copy(zpath, stale, "ml-100k/u.data")
    dest = fetch_archive(src, archives, str(mirror))
    assert dest == stale and dest.read_bytes() == zpath.read_bytes()
    assert _leftovers(archives) == ["ml-100k.zip"]
    err = capsys.readouterr().err
    assert f"removing {stale}" in err


def test_bad_existing_archive_and_bad_mirror_leave_nothing(tmp_path):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    zpath, src = _fake_ml100k(mirror)
    archives.mkdir()
    (archives / "ml-100k.zip").write_bytes(HTML)
    _truncate(zpath)
    with pytest.raises(DataError, match="truncated"):
        fetch_archive(src, archives, str(mirror))
    assert _leftovers(archives) == []


def test_bad_existing_archive_offline(tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    (archives / "ml-100k.zip").write_bytes(HTML)
    with pytest.raises(DataError) as exc:
        fetch_archive(SOURCES["ml-100k"], archives, None, offline=True)
    msg = str(exc.value)
    assert "downloads are off" in msg and "failed verification and was removed" in msg
    assert _leftovers(archives) == []


# ----------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("payload_kind", ["html", "truncated"])
def test_bad_download_names_the_url_and_leaves_nothing(tmp_path, monkeypatch, payload_kind):
    good, src = _fake_ml100k(tmp_path / "good")
    payload = HTML if payload_kind == "html" else good.read_bytes()[:2000]
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: io.BytesIO(payload))
    archives = tmp_path / "archives"
    with pytest.raises(DataError) as exc:
        fetch_archive(src, archives, None)
    msg = str(exc.value)
    assert msg.startswith(f"{src.url} is not a valid zip archive: ")
    assert ("of an HTML page" if payload_kind == "html" else "the file is truncated") in msg
    assert "rerun to download it again" in msg and "CEL_DATA_MIRROR" in msg
    assert _leftovers(archives) == []


def test_good_download_lands_verified(tmp_path, monkeypatch):
    good, src = _fake_ml100k(tmp_path / "good")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: io.BytesIO(good.read_bytes()))
    dest = fetch_archive(src, tmp_path / "archives", None)
    assert dest.read_bytes() == good.read_bytes()
    assert _leftovers(tmp_path / "archives") == ["ml-100k.zip"]


# ----------------------------------------------------------------------------- ML-10m: no checksum
def test_ml10m_without_checksum_is_fetched_as_before(tmp_path):
    """No published checksum: fetch checks the zip and the member list only; reading the member
    is still refused unless data.require_checksums is false (unchanged behaviour)."""
    zpath, ratings, _ = fx.ml10m_archive(tmp_path / "mirror")
    src = SOURCES["ml-10m"]
    assert all(m.checksum is None for m in src.members.values())
    dest = fetch_archive(src, tmp_path / "archives", str(tmp_path / "mirror"))
    assert dest.read_bytes() == zpath.read_bytes()
    with pytest.raises(DataError, match="require_checksums"):
        read_member(dest, src.members["ratings"], require_checksum=True)
    assert read_member(dest, src.members["ratings"], require_checksum=False)[0] == ratings
    assert fetch_archive(src, tmp_path / "archives", None, offline=True) == dest     # reused


def test_ml10m_truncated_still_refused(tmp_path):
    zpath, _, _ = fx.ml10m_archive(tmp_path / "mirror")
    zpath.write_bytes(zpath.read_bytes()[:-30])        # end-of-archive record cut off
    with pytest.raises(DataError, match="not a valid zip archive"):
        fetch_archive(SOURCES["ml-10m"], tmp_path / "archives", str(tmp_path / "mirror"))
    assert _leftovers(tmp_path / "archives") == []


# ----------------------------------------------------------------------------- Snakemake end to end
def _profile(tmp_path: Path) -> Path:
    prof = tiny_profile(tmp_path)
    prof["datasets"]["ml-100k"] = {"kind": "ml-100k"}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def _snakemake(tmp_path: Path, mirror: Path, target: Path) -> subprocess.CompletedProcess:
    cmd = [str(SNAKEMAKE), str(target), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--cores", "1", "--configfile", str(_profile(tmp_path))]
    env = {**os.environ, "CEL_DATA_MIRROR": str(mirror)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _make_bad(mirror: Path, bad: str) -> Path:
    mirror.mkdir(parents=True, exist_ok=True)
    z = mirror / "ml-100k.zip"
    if bad == "truncated":
        z.write_bytes(REAL_ZIP.read_bytes()[: REAL_ZIP.stat().st_size // 2])
    elif bad == "html":
        z.write_bytes(HTML)
    else:
        _tampered_copy(REAL_ZIP, z, "ml-100k/u.data")
    return z


@pytest.mark.slow
@needs_real
@pytest.mark.parametrize("bad, target", [("truncated", "prepared"), ("html", "archive"), ("tampered", "prepared")])
def test_snakemake_bad_mirror_fails_then_rerun_succeeds(tmp_path, bad, target):
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    zpath = _make_bad(mirror, bad)
    prepared = tmp_path / "results" / "data" / "ml-100k" / "prepared" / "interactions.parquet"
    goal = prepared if target == "prepared" else archives / "ml-100k.zip"

    r = _snakemake(tmp_path, mirror, goal)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "download_archive" in out
    assert str(zpath.resolve()) in out                   # Snakemake shows the failed job's log
    assert _leftovers(archives) == [], out               # no archive, no temp file
    assert not prepared.exists()
    log = (tmp_path / "results" / "logs" / "download_archive" / "ml-100k.zip.log").read_text()
    assert str(zpath.resolve()) in log                   # the log names the bad file ...
    assert "replace" in log                              # ... and what to do
    if bad == "tampered":
        assert f"{zpath.resolve()}:ml-100k/u.data" in log
        assert SOURCES["ml-100k"].members["ratings"].checksum.value in log

    zpath.write_bytes(REAL_ZIP.read_bytes())            # fix the mirror; rerun the same command
    r = _snakemake(tmp_path, mirror, goal)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (archives / "ml-100k.zip").read_bytes() == REAL_ZIP.read_bytes()
    assert _leftovers(archives) == ["ml-100k.zip"]
    assert goal.exists()


@pytest.mark.slow
@needs_real
def test_snakemake_stale_bad_archive_from_an_earlier_run_is_replaced(tmp_path):
    """An archive left behind by the old rule counts as done for Snakemake; the prepare step
    re-verifies it, removes it and fetches the good one from the (fixed) mirror."""
    mirror, archives = tmp_path / "mirror", tmp_path / "archives"
    mirror.mkdir()
    (mirror / "ml-100k.zip").write_bytes(REAL_ZIP.read_bytes())
    archives.mkdir()
    (archives / "ml-100k.zip").write_bytes(REAL_ZIP.read_bytes()[:100_000])
    prepared = tmp_path / "results" / "data" / "ml-100k" / "prepared" / "interactions.parquet"
    r = _snakemake(tmp_path, mirror, prepared)
    assert r.returncode == 0, r.stdout + r.stderr
    assert prepared.exists()
    assert (archives / "ml-100k.zip").read_bytes() == REAL_ZIP.read_bytes()
