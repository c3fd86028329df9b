"""Prepared tables: interactions (user, item, rating, timestamp; a power-law stream adds its
generator's columns) and item metadata, ids 0..N-1."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cel.data.fetch import DataError, fetch_archive, read_member
from cel.data.parsers import PARSERS
from cel.data.sources import SOURCES
from cel.data.stream_source import load_stream
from cel.data.synthetic import SyntheticSpec, generate
from cel.io import write_json, write_parquet

INTERACTION_COLUMNS = ["user", "item", "rating", "timestamp"]


def remap(inter: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map raw ids to 0..N-1 (users) and 0..M-1 (items), ordered by raw id.

    Items of the metadata that have no interaction are dropped; interactions whose item has no
    metadata keep an empty title. Columns beyond the raw ids, rating and timestamp (the power-law
    stream's generator columns) are kept as they are.
    """
    users = np.sort(inter["raw_user"].unique())
    item_ids = np.sort(inter["raw_item"].unique())
    out = pd.DataFrame({
        "user": np.searchsorted(users, inter["raw_user"].to_numpy()).astype(np.int64),
        "item": np.searchsorted(item_ids, inter["raw_item"].to_numpy()).astype(np.int64),
        "rating": inter["rating"].to_numpy(dtype=np.float64),
        "timestamp": inter["timestamp"].to_numpy(dtype=np.int64),
    })
    for col in inter.columns.difference(["raw_user", "raw_item", *INTERACTION_COLUMNS], sort=False):
        out[col] = inter[col].to_numpy()
    meta = pd.DataFrame({"raw_item": item_ids}).merge(items, on="raw_item", how="left")
    meta.insert(0, "item", np.arange(len(item_ids), dtype=np.int64))
    meta["title"] = meta["title"].fillna("")
    meta["genres"] = meta["genres"].fillna("")
    return out, meta


def load_raw(name: str, ds_cfg: dict, archives_dir: Path, mirror: str | None, require_checksums: bool):
    """Return (raw interactions, raw items, provenance dict) for one configured dataset."""
    kind = ds_cfg["kind"]
    if kind == "synthetic":
        spec = SyntheticSpec.from_config(ds_cfg)
        inter, items = generate(spec)
        return inter, items, {"source": "synthetic", "params": ds_cfg}
    if kind == "stream":
        return load_stream(name, ds_cfg)
    if kind == "csv":
        from cel.data.csv_source import load_csv

        return load_csv(name, ds_cfg)
    source = SOURCES[kind]
    archive = fetch_archive(source, archives_dir, mirror)
    blobs, checks = {}, {}
    for role in ("ratings", "items"):
        member = source.members[role]
        blobs[role], checks[member.path] = read_member(archive, member, require_checksum=require_checksums)
    inter, items = PARSERS[source.parser](
        blobs["ratings"], blobs["items"],
        (f"{archive.name}:{source.members['ratings'].path}", f"{archive.name}:{source.members['items'].path}"),
    )
    return inter, items, {"source": source.url, "archive": archive.name, "sha256": checks}


def prepare_dataset(name: str, ds_cfg: dict, out_dir: str | Path, archives_dir: str | Path,
                    mirror: str | None, require_checksums: bool = True) -> dict:
    """Write ``interactions.parquet``, ``items.parquet`` and ``meta.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    inter, items, prov = load_raw(name, ds_cfg, Path(archives_dir), mirror, require_checksums)
    if inter.duplicated(["raw_user", "raw_item"]).any():
        n = int(inter.duplicated(["raw_user", "raw_item"]).sum())
        raise DataError(f"{name}: {n} duplicated (user, item) pairs in the ratings")
    inter, meta = remap(inter, items)
    if "id_maps" in prov:           # csv: raw id -> prepared id, next to the prepared tables
        from cel.data.csv_source import write_id_maps

        write_id_maps(prov, out_dir)
    info = {
        "dataset": name, "users": int(inter["user"].max() + 1), "items": int(inter["item"].max() + 1),
        "interactions": len(inter), **prov,
    }
    write_parquet(meta, out_dir / "items.parquet")
    write_json(out_dir / "meta.json", info)
    write_parquet(inter, out_dir / "interactions.parquet")  # last: the rule's marker output
    return info
