"""summary.csv: every run's metrics.json in long format (one row per run and metric).

Columns: ``COLUMNS`` (the run's grid coordinates, the metric and its value), then one column
``param.<name>`` per resolved method parameter (``record["params"]["method"]``) and one column
``train.<name>`` per training setting (``record["params"]["train"]``, e.g. the optimizer of Table 13),
each stringified by :func:`canon` and empty where a run's method lacks it; where a hand grid chose
a parameter (``record["selection"]["params"]``), the chosen value. Records written before
the grid had tasks and seeds read as task ``regression``, seed 0. Only metrics.json is read.
"""
from __future__ import annotations

import json
import math
from numbers import Integral, Real
from pathlib import Path

import pandas as pd

COLUMNS = ["task", "dataset", "variant", "model", "method", "compression", "fold", "seed", "metric", "value"]
#: run coordinates as (column, default where an older record lacks it); None = required
RUN_KEYS = (("task", "regression"), ("dataset", None), ("variant", None), ("model", None),
            ("method", None), ("compression", None), ("fold", 0), ("seed", 0))
#: record["params"] sections spread into prefixed columns
PARAM_SECTIONS = (("method", "param."), ("train", "train."))


def canon(value) -> str | None:
    """One spelling of a grid value, the same in memory and after a CSV round trip:
    ``40``, ``40.0`` -> "40"; ``0.5`` -> "0.5"; ``True`` -> "True"; strings as they are; None/NaN -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        v = float(value)
        if math.isnan(v):
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def method_defaults(base: str | None) -> dict:
    """The default parameters of a registered method (its Params dataclass), {} if unknown."""
    import dataclasses

    from cel.embeddings import EMBEDDINGS

    cls = EMBEDDINGS.get(base or "")
    if cls is None:
        return {}
    return {f.name: f.default for f in dataclasses.fields(cls.Params) if f.default is not dataclasses.MISSING}


def _params(record: dict) -> dict[str, str]:
    """The run's parameters; a hand grid's choice (``selection.params``) replaces the base value."""
    out = {}
    params = dict(record.get("params") or {})
    chosen = (record.get("selection") or {}).get("params") or {}
    if chosen:        # ``train.<setting>`` keys of a tuned candidate go to the train section
        method = {k: v for k, v in chosen.items() if not k.startswith("train.")}
        train = {k[len("train."):]: v for k, v in chosen.items() if k.startswith("train.")}
        params["method"] = {**(params.get("method") or {}), **method}
        params["train"] = {**(params.get("train") or {}), **train}
    if isinstance(params.get("method"), dict):    # unset parameters read as their defaults (t1 = 40 ...)
        params["method"] = {**method_defaults(params["method"].get("base")), **params["method"]}
    for section, prefix in PARAM_SECTIONS:
        block = params.get(section)
        if not isinstance(block, dict):
            continue
        for k, v in block.items():
            c = canon(v)
            if c is not None:
                out[prefix + k] = c
    return out


def summarize(metric_files: list[str | Path]) -> pd.DataFrame:
    rows = []
    for f in metric_files:
        rec = json.loads(Path(f).read_text())
        r = rec["run"]
        run = {}
        for key, default in RUN_KEYS:
            if key not in r and default is None:
                raise KeyError(f"{f}: run record lacks '{key}'")
            run[key] = r.get(key, default)
        run["compression"] = canon(run["compression"])
        run["fold"], run["seed"] = int(run["fold"]), int(run["seed"])
        params = _params(rec)
        for section in ("metrics", "timing"):
            for k, v in (rec.get(section) or {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    rows.append({**run, "metric": k, "value": float(v), **params})
    extra = sorted({k for row in rows for k in row} - set(COLUMNS),
                   key=lambda c: (not c.startswith("param."), c))
    df = pd.DataFrame(rows, columns=COLUMNS + extra)
    df["compression"] = df["compression"].astype(str)
    return df.sort_values(COLUMNS[:-1], kind="stable").reset_index(drop=True)
