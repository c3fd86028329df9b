"""Provenance tags of a run: git commit of the code that produced it, checksums of its raw files."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def source_sha256(prepared_meta: str | Path) -> str:
    """The sha256 of every raw file a dataset was prepared from (``name=sha`` joined by ``,``), as
    recorded in its prepared ``meta.json``; ``unknown`` where none is recorded (synthetic data)."""
    try:
        sums = json.loads(Path(prepared_meta).read_text()).get("sha256") or {}
    except (OSError, ValueError):
        return "unknown"
    return ",".join(f"{Path(k).name}={v}" for k, v in sorted(sums.items())) or "unknown"
