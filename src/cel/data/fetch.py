"""Obtain a raw archive (local mirror or canonical URL) and read its members, verified.

An archive only ever appears under its final name once it has been checked: it is copied or
downloaded to a temporary file next to the destination, verified (a readable zip, every member the
:class:`Source` lists present, each known checksum matching) and only then renamed into place. A
Snakemake output (``download_archive``) therefore never holds a truncated zip or an HTML page.
"""
from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
import zlib
from pathlib import Path

from cel.data.amazon_fetch import pack_files
from cel.data.sources import Checksum, Member, Source  # noqa: F401 (Checksum re-exported)
from cel.errors import ChecksumError, DataError  # noqa: F401 (re-exported)
from cel.io import atomic_path, download, sha256_file


def digest(data: bytes, algo: str) -> str:
    if algo == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algo == "git-blob":  # what `git hash-object FILE` prints
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    raise ValueError(f"unknown checksum algorithm {algo!r}")


def _describe_non_zip(path: Path) -> str:
    """What a file that is not a zip looks like (truncated zip, HTML page, empty, other), with its hash."""
    size = path.stat().st_size
    if size == 0:
        return "got an empty file"
    with open(path, "rb") as fh:
        head = fh.read(512)
    got = f"got {size:,} bytes (sha256 {sha256_file(path)})"
    if head.startswith(b"PK\x03\x04"):
        return (f"{got} that start like a zip but lack its end-of-archive record: the file is truncated, "
                "e.g. an interrupted download or copy")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in text:
        snippet = " ".join(head.decode("latin-1").split())[:80]
        return (f"{got} of an HTML page, e.g. an error or login page saved under the archive's name, "
                f"starting {snippet!r}")
    return f"{got} starting {head[:16]!r}"


def _expected(source: Source) -> str:
    """The members a good archive holds, with their published checksums."""
    return "expected a zip holding " + ", ".join(
        f"{m.path} ({m.checksum.algo} {m.checksum.value})" if m.checksum else f"{m.path} (no published checksum)"
        for m in source.members.values())


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


def verify_archive(path: str | Path, source: Source, *, name: str | None = None, advice: str = "") -> None:
    """Check that ``path`` is a readable zip holding every member of ``source``, checksums matching.

    ``name`` is how the file is named in messages (the mirror path or the URL it came from;
    default ``path``), ``advice`` what the user should do, appended to every message. Members
    whose checksum is unknown (``None``, e.g. ML-10m) are checked for presence and CRC only; whether
    such a member may be *read* is decided by :func:`read_member` (``data.require_checksums``).

    Raises :class:`DataError`, or :class:`ChecksumError` for a member whose checksum differs.
    """
    path = Path(path)
    name = name or str(path)
    tail = f" {advice}" if advice else ""
    if not zipfile.is_zipfile(path):
        raise DataError(f"{name} is not a valid zip archive: {_expected(source)}; {_describe_non_zip(path)}.{tail}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [m.path for m in source.members.values() if m.path not in names]
            if missing:
                raise DataError(
                    f"{name} is not the {source.name} archive: member(s) missing: "
                    + ", ".join(f"{name}:{p}" for p in missing) + f".{tail}"
                )
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"{name}:{bad}: corrupt member (CRC check failed); the archive is damaged.{tail}")
            for member in source.members.values():
                if member.checksum is None:
                    continue
                actual = digest(zf.read(member.path), member.checksum.algo)
                if actual != member.checksum.value:
                    err = ChecksumError(f"{name}:{member.path}", member.checksum.algo, member.checksum.value, actual)
                    if advice:
                        err.args = (f"{err.args[0]} {advice}",)
                    raise err
    except DataError:
        raise
    except _ZIP_ERRORS as exc:
        raise DataError(
            f"{name} is not a valid zip archive: {_expected(source)}; got {path.stat().st_size:,} bytes "
            f"(sha256 {sha256_file(path)}) that cannot be read ({type(exc).__name__}: {exc}).{tail}"
        ) from exc


def fetch_archive(source: Source, dest_dir: str | Path, mirror: str | None, *, offline: bool = False) -> Path:
    """Place ``source.archive`` in ``dest_dir``: copied from ``mirror`` if given, else downloaded.

    The archive is verified (:func:`verify_archive`) in a temporary file next to the destination
    and renamed into place only when it passes, so a bad copy never appears under the final name.
    An archive already at the destination is re-verified before it is returned; a bad one is
    removed and fetched again.

    Raises :class:`DataError` (naming every place looked in) when the archive is not available,
    or :class:`DataError` / :class:`ChecksumError` when the copy or download is bad; in either
    case nothing is left at the destination.
    """
    if source.files:        # plain files (Amazon): fetched one by one, checked, packed into the archive
        return pack_files(source, dest_dir, mirror, offline=offline)
    dest = Path(dest_dir) / source.archive
    removed = ""
    if dest.exists():
        try:
            verify_archive(dest, source)
            return dest
        except DataError as exc:
            print(f"[cel] WARNING: removing {dest}, it fails verification and is fetched again: {exc}",
                  file=sys.stderr)
            dest.unlink()
            removed = f" (the archive that was there failed verification and was removed: {exc})"
    if mirror:
        candidate = Path(mirror) / source.archive
        if not candidate.exists():
            raise DataError(
                f"{source.archive} not found in the data mirror: looked for {candidate.resolve()}. "
                f"Put the archive there (canonical URL: {source.url}), point CEL_DATA_MIRROR / "
                f"data.mirror at a folder that has it, or unset the mirror to download.{removed}"
            )
        advice = (f"The data mirror holds a bad copy: replace {candidate.resolve()} with a good copy of "
                  f"{source.archive} (canonical URL: {source.url}), or point CEL_DATA_MIRROR / data.mirror "
                  f"at a folder that has one, then rerun. Nothing was written to {dest.resolve()}.")
        with atomic_path(dest) as tmp:
            shutil.copyfile(candidate, tmp)
            verify_archive(tmp, source, name=str(candidate.resolve()), advice=advice)
        return dest
    if offline:
        raise DataError(f"{source.archive} is not in {dest.parent.resolve()} and downloads are off.{removed}")
    advice = (f"The download is bad (interrupted, or a web page served instead of the archive): rerun to "
              f"download it again, or put a good copy of {source.archive} in a folder and set "
              f"CEL_DATA_MIRROR=/that/folder (or data.mirror in the config). "
              f"Nothing was written to {dest.resolve()}.")
    try:
        with atomic_path(dest) as tmp:
            download(source.url, tmp)
            verify_archive(tmp, source, name=source.url, advice=advice)
    except DataError:
        raise
    except OSError as exc:  # URLError is an OSError
        raise DataError(
            f"could not download {source.url} ({exc}). Without network, provide a local mirror: "
            f"put {source.archive} in a folder and set CEL_DATA_MIRROR=/that/folder "
            f"(or data.mirror in the config). Looked for the archive at {dest.resolve()}."
        ) from exc
    return dest


def read_member(archive: Path, member: Member, *, require_checksum: bool = True) -> tuple[bytes, str]:
    """Read one member file of a zip archive and verify its checksum.

    Returns (bytes, observed sha256).
    """
    what = f"{archive.name}:{member.path}"
    try:
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(member.path)
    except KeyError:
        raise DataError(f"{what}: member missing from the archive {archive}") from None
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a valid zip archive ({exc}); delete it and fetch again") from exc
    sha = digest(data, "sha256")
    if member.checksum is None:
        if require_checksum:
            raise DataError(
                f"{what}: the project knows no checksum for this file (observed sha256 {sha}). "
                "Set data.require_checksums: false to accept it; the observed hash is then recorded."
            )
        print(f"[cel] WARNING: {what} is unverified (no published checksum); sha256 {sha}", file=sys.stderr)
        return data, sha
    actual = sha if member.checksum.algo == "sha256" else digest(data, member.checksum.algo)
    if actual != member.checksum.value:
        raise ChecksumError(what, member.checksum.algo, member.checksum.value, actual)
    return data, sha
