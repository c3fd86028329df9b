"""Obtain a raw archive (local mirror or canonical URL) and read its members, verified."""
from __future__ import annotations

import hashlib
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

from cel.data.sources import Checksum, Member, Source
from cel.io import atomic_path


class DataError(RuntimeError):
    """Raw data is missing, corrupt or malformed; the message says which file and what to do."""


class ChecksumError(DataError):
    def __init__(self, what: str, checksum: Checksum, actual: str):
        self.what, self.expected, self.actual = what, checksum.value, actual
        super().__init__(
            f"checksum mismatch for {what}: expected {checksum.algo} {checksum.value}, got {actual}. "
            "The file is corrupt or not the published release; delete it and fetch it again."
        )


def digest(data: bytes, algo: str) -> str:
    if algo == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algo == "git-blob":  # what `git hash-object FILE` prints
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    raise ValueError(f"unknown checksum algorithm {algo!r}")


def fetch_archive(source: Source, dest_dir: str | Path, mirror: str | None, *, offline: bool = False) -> Path:
    """Place ``source.archive`` in ``dest_dir``: copied from ``mirror`` if given, else downloaded.

    Raises :class:`DataError` naming every place looked in when the archive is not available.
    """
    dest = Path(dest_dir) / source.archive
    if dest.exists():
        return dest
    if mirror:
        candidate = Path(mirror) / source.archive
        if not candidate.exists():
            raise DataError(
                f"{source.archive} not found in the data mirror: looked for {candidate.resolve()}. "
                f"Put the archive there (canonical URL: {source.url}), point CEL_DATA_MIRROR / "
                "data.mirror at a folder that has it, or unset the mirror to download."
            )
        with atomic_path(dest) as tmp:
            shutil.copyfile(candidate, tmp)
        return dest
    if offline:
        raise DataError(f"{source.archive} is not in {dest.parent.resolve()} and downloads are off.")
    print(f"[cel] downloading {source.url}", file=sys.stderr)
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(source.url, timeout=60) as resp:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(resp, fh)
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
        raise ChecksumError(what, member.checksum, actual)
    return data, sha
