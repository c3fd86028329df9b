"""Run a command and record how long it took, for the README's measured profile times.

    python scripts/timed.py OUT.json -- COMMAND...

OUT.json gets the wall seconds, the CPU seconds of every process the command started (user +
system, from the kernel's accounting of waited-for children), the cores this machine has, the load
average just before the start, the git commit and the exit code. `make quick` uses it
(results/quick/wall.json); `cel readme CONFIG --profile NAME` turns it into a README block.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out, cmd = Path(argv[0]), argv[2:]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    load = os.getloadavg()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(cmd), "returncode": rc, "wall_seconds": round(wall, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load], "commit": commit[:7], "dirty": dirty,
        "started": started.isoformat(timespec="seconds"),
    }, indent=1, sort_keys=True) + "\n")
    print(f"[timed] {wall / 60:.1f} min wall, {(usage.ru_utime + usage.ru_stime) / 60:.1f} CPU min -> {out}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
