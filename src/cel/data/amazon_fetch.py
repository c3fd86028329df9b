"""Fetch the Amazon 2014 files (McAuley et al.; snap.stanford.edu), which come as plain files,
not as an archive: ``ratings_<Category>.csv`` and ``meta_<Category>.json.gz``.

Each file is taken from the data mirror (``CEL_DATA_MIRROR`` / ``data.mirror``, under its
published name) or downloaded from its canonical URL (``Source.files``), checked, and the pair is
packed (stored, uncompressed) into the source's archive, ``amazon-<category>.zip``, so that the
rest of the pipeline (``read_member``, the ``amazon`` parser, the ``download_archive`` rule)
treats Amazon like MovieLens.

Checksums: none is published. The first fetch records each file's sha256 in the lock file
``<archives_dir>/checksums.lock.json`` (trust on first use, as the paper profile does for
ML-10m); every later fetch must match it, else :class:`~cel.errors.ChecksumError` names the file
and both hashes. A checksum listed in the :class:`~cel.data.sources.Source` always wins.

Nothing appears under the archive's name unless every file passed (the archive is written to a
temporary file and renamed), so an interrupted download or an HTML error page never becomes a
finished Snakemake output.
"""
from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

from cel.data.sources import Source
from cel.errors import ChecksumError, DataError
from cel.io import atomic_path, download, sha256_file

LOCK_NAME = "checksums.lock.json"
GZIP_MAGIC = b"\x1f\x8b"


def read_lock(archives_dir: Path) -> dict[str, str]:
    path = Path(archives_dir) / LOCK_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def _write_lock(archives_dir: Path, lock: dict[str, str]) -> None:
    with atomic_path(Path(archives_dir) / LOCK_NAME) as tmp:
        tmp.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")


def _check_shape(path: Path, name: str, where: str) -> None:
    """A gzip member must be gzip; no file may be empty or an HTML page."""
    with open(path, "rb") as fh:
        head = fh.read(256)
    if not head:
        raise DataError(f"{where}: {name} is empty")
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html", b"<?xml")):
        raise DataError(f"{where}: {name} is an HTML page, not the data file (an error or login page); "
                        "fetch it again")
    if name.endswith(".gz") and not head.startswith(GZIP_MAGIC):
        raise DataError(f"{where}: {name} is not gzip-compressed (got {head[:16]!r})")


def _obtain(url: str, name: str, tmp: Path, mirror: str | None, offline: bool) -> str:
    """Copy or download one file to ``tmp``; returns where it came from."""
    if mirror:
        candidate = Path(mirror) / name
        if not candidate.exists():
            raise DataError(f"{name} not found in the data mirror: looked for {candidate.resolve()}. Put the file "
                            f"there (canonical URL: {url}), point CEL_DATA_MIRROR / data.mirror at a folder that "
                            "has it, or unset the mirror to download.")
        shutil.copyfile(candidate, tmp)
        return str(candidate.resolve())
    if offline:
        raise DataError(f"{name} is not available and downloads are off (canonical URL: {url})")
    try:
        download(url, tmp)
    except OSError as exc:                  # URLError is an OSError
        raise DataError(f"could not download {url} ({exc}). Without network, put {name} in a folder and set "
                        "CEL_DATA_MIRROR=/that/folder (or data.mirror in the config).") from exc
    return url


def _archive_ok(path: Path, source: Source) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return {m.path for m in source.members.values()} <= set(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def pack_files(source: Source, dest_dir: str | Path, mirror: str | None, *, offline: bool = False) -> Path:
    """Place ``source.archive`` (the source's files, packed) in ``dest_dir``; see the module doc."""
    dest_dir = Path(dest_dir)
    dest = dest_dir / source.archive
    if dest.exists():
        if _archive_ok(dest, source):
            return dest
        print(f"[cel] WARNING: removing {dest}: not a zip holding "
              f"{', '.join(m.path for m in source.members.values())}", file=sys.stderr)
        dest.unlink()
    lock = read_lock(dest_dir)
    recorded: dict[str, str] = {}
    with atomic_path(dest) as archive, zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for role, url in source.files.items():
            member = source.members[role]
            tmp = dest_dir / f".{member.path}.part"
            try:
                where = _obtain(url, member.path, tmp, mirror, offline)
                _check_shape(tmp, member.path, where)
                sha = sha256_file(tmp)
                expected = member.checksum.value if member.checksum else lock.get(member.path)
                if expected is not None and sha != expected:
                    source_of = "the source" if member.checksum else f"{dest_dir / LOCK_NAME} (first download)"
                    err = ChecksumError(f"{where} ({member.path})", "sha256", expected, sha)
                    err.args = (f"{err.args[0]} Expected hash from {source_of}.",)
                    raise err
                if expected is None:
                    recorded[member.path] = sha
                zf.write(tmp, member.path)
            finally:
                tmp.unlink(missing_ok=True)  # only the archive is kept
    if recorded:
        _write_lock(dest_dir, {**lock, **recorded})
        for name, sha in recorded.items():
            print(f"[cel] WARNING: {name} has no published checksum; recorded sha256 {sha} in "
                  f"{dest_dir / LOCK_NAME}", file=sys.stderr)
    return dest
