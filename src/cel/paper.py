"""The paper's published numbers (resources/paper_results.yaml, copied from shared/paper)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml


@lru_cache(maxsize=1)
def paper_results() -> dict:
    return yaml.safe_load(resources.files("cel").joinpath("resources/paper_results.yaml").read_text())


def paper_value(table: str, dataset: str, method: str, compression: str, model: str | None = None) -> float | None:
    """Published value of a cell, or None where the paper has none.

    ``table7`` is keyed dataset -> method -> compression; ``table2`` model -> method -> compression.
    """
    t = paper_results().get(table, {})
    node = t.get(model) if table == "table2" else t.get(dataset)
    if not isinstance(node, dict):
        return None
    row = node.get(method)
    if not isinstance(row, dict):
        return None
    v = row.get(str(compression))
    return float(v) if v is not None else None


DEVIATION_KEYS = ("id", "what", "paper", "ours", "evidence")


@lru_cache(maxsize=1)
def deviations() -> dict[str, dict]:
    """Where our protocol departs from the paper (resources/deviations.yaml), by id, in file order."""
    entries = yaml.safe_load(resources.files("cel").joinpath("resources/deviations.yaml").read_text())
    out = {}
    for i, e in enumerate(entries):
        missing = [k for k in DEVIATION_KEYS if not str(e.get(k, "")).strip()]
        if missing:
            raise ValueError(f"resources/deviations.yaml entry {i}: missing {', '.join(missing)}")
        out[e["id"]] = e
    return out
