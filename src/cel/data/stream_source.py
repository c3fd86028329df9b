"""The ``stream`` dataset kind: the synthetic power-law stream (:mod:`cel.data.stream`) prepared as
a dataset like any other, and its users' home scenarios (SAML's scenario, issue #16).

A ``stream`` dataset's parameters are the fields of :class:`~cel.data.stream.StreamSpec`
(``rows``, ``users``, ``items``, ``groups``, ``user_exponent`` ...). Preparation
(:func:`load_stream`, called by :func:`cel.data.prepare.load_raw`):

* rows in stream order, ``timestamp`` = the row's position in the stream, so the chronological
  ``online`` variant (``split: chrono``) tests the latest 20% of the stream;
* a repeated (user, item) pair keeps its last row (:func:`cel.data.dedupe.keep_last`, as a csv
  file's ``duplicates: keep_last``): a prepared dataset holds every pair once, and a test row is
  never a repeat of a training row whose rating (the pair's planted score plus noise) it would
  nearly copy. The count dropped is in ``meta.json``;
* besides user, item, rating and timestamp every row keeps the generator's columns (``label``,
  ``scenario``, ``behavior``, ``group``) and its user's home scenario (``home_scenario``,
  0..K-1). The home scenario is stored per row so that every variant, which drops rows and
  renumbers users, carries it along;
* items carry their planted group as the genre ``g<k>`` and in ``cluster`` (as the
  ``synthetic`` kind's).

The conversion task thresholds ``rating`` as on MovieLens (``tasks.*.threshold``); the
generator's own Bernoulli ``label`` stays in the table, unused by the task.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from cel.data.dedupe import keep_last
from cel.data.stream import StreamModel, StreamSpec, iter_chunks
from cel.data.synthetic import planted_items
from cel.errors import ConfigError, DataError

#: per-row column holding the user's home scenario (0..K-1, the generator's ``StreamModel.home``)
HOME = "home_scenario"
PARAMS = tuple(f.name for f in fields(StreamSpec))


def stream_spec(name: str, ds: dict) -> StreamSpec:
    """The generator spec of dataset ``name`` (its entry ``ds``, ``kind: stream``); errors name the key."""
    params = {k: v for k, v in ds.items() if k != "kind"}
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ConfigError(f"config unknown key at 'datasets.{name}.{unknown[0]}': not a stream parameter "
                          f"(known: {', '.join(PARAMS)})")
    try:
        return StreamSpec(**params)
    except ValueError as exc:
        raise ConfigError(f"config invalid value at 'datasets.{name}': {exc}") from None


def load_stream(name: str, ds: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(raw interactions, raw items, provenance) of a ``stream`` dataset, as ``prepare.load_raw``
    returns them; raw ids are the generator's."""
    spec = stream_spec(name, ds)
    model = StreamModel.build(spec)
    rows = pd.concat(list(iter_chunks(spec, model)), ignore_index=True)
    keep = keep_last(rows["user"], rows["item"], rows["timestamp"])
    inter = rows.iloc[keep].rename(columns={"user": "raw_user", "item": "raw_item"}).reset_index(drop=True)
    inter[HOME] = model.home[inter["raw_user"].to_numpy()].astype(np.int16)
    prov = {"source": "stream", "params": ds,
            "duplicates": {"policy": "keep_last", "rows": spec.rows, "rows_dropped": spec.rows - len(keep)}}
    return inter, planted_items(model.group), prov


def home_scenarios(name: str, ds: dict, interactions: str | Path, n_users: int, max_scenarios: int) -> np.ndarray:
    """(N,) home scenario of every user of a prepared (or variant) interactions table, as ids
    1..K (0 = a user without rows); ``max_scenarios``: the most the consumer (SAML) has."""
    spec = stream_spec(name, ds)
    if spec.scenarios > max_scenarios:
        raise ConfigError(f"config invalid value at 'datasets.{name}.scenarios': {spec.scenarios} scenarios, "
                          f"SAML has {max_scenarios} branches (cel.models.saml.N_SCENARIOS)")
    frame = pd.read_parquet(interactions)
    if HOME not in frame:
        raise DataError(f"{interactions}: no column {HOME!r}; prepare dataset {name!r} again")
    first = frame[["user", HOME]].drop_duplicates("user")
    ids = np.zeros(n_users, dtype=np.int64)
    ids[first["user"].to_numpy()] = first[HOME].to_numpy().astype(np.int64) + 1
    return ids


__all__ = ["HOME", "PARAMS", "home_scenarios", "load_stream", "stream_spec"]
