"""summary.csv: every run's metrics.json in long format."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

COLUMNS = ["dataset", "variant", "model", "method", "compression", "fold", "metric", "value"]


def summarize(metric_files: list[str | Path]) -> pd.DataFrame:
    rows = []
    for f in metric_files:
        rec = json.loads(Path(f).read_text())
        r = rec["run"]
        for section in ("metrics", "timing"):
            for k, v in rec.get(section, {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    rows.append({**{c: r[c] for c in COLUMNS[:6]}, "metric": k, "value": float(v)})
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["compression"] = df["compression"].astype(str)
    return df.sort_values(COLUMNS[:7], kind="stable").reset_index(drop=True)
