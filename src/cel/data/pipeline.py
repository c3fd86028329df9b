"""The data steps of the workflow (prepare -> variant -> split) and loading one fold of a run.

Each step reads the previous step's files and writes its own atomically; the Snakemake rules
call these through the ``cel`` CLI, and ``cel train`` outside Snakemake builds what is missing.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from cel import paths
from cel.config import ProjectConfig
from cel.runkey import RunKey
from cel.data.prepare import prepare_dataset
from cel.data.chrono import chrono_assignment
from cel.data.splits import FoldData, kfold_assignment
from cel.data.variants import make_variant
from cel.io import write_json, write_parquet


def run_prepare(cfg: ProjectConfig, dataset: str) -> None:
    prepare_dataset(dataset, cfg.dataset(dataset), paths.prepared_dir(cfg.results_dir, dataset),
                    cfg.archives_dir, cfg.mirror, cfg.require_checksums)


def run_variant(cfg: ProjectConfig, dataset: str, variant: str) -> None:
    src = paths.prepared_dir(cfg.results_dir, dataset)
    out = paths.variant_dir(cfg.results_dir, dataset, variant)
    inter, items = make_variant(pd.read_parquet(src / "interactions.parquet"),
                                pd.read_parquet(src / "items.parquet"), cfg.variant(variant))
    info = {"dataset": dataset, "variant": variant, "spec": cfg.variant(variant),
            "users": int(inter["user"].max() + 1), "items": int(inter["item"].max() + 1),
            "interactions": len(inter), "train_ok": int(inter["train_ok"].sum())}
    write_parquet(items, out / "items.parquet")
    write_json(out / "meta.json", info)
    write_parquet(inter, out / "interactions.parquet")


def run_split(cfg: ProjectConfig, dataset: str, variant: str) -> None:
    vdir = paths.variant_dir(cfg.results_dir, dataset, variant)
    if cfg.variant(variant).get("split") == "chrono":     # online protocol: fold 0 = the last 20% by time
        frac = cfg.variant(variant).get("test_fraction", 0.2)
        fold = chrono_assignment(pd.read_parquet(vdir / "interactions.parquet", columns=["timestamp"])["timestamp"], frac)
        write_json(vdir / "split.json", {"kind": "chrono", "test_fraction": frac, "sizes": np.bincount(fold).tolist()})
        return write_parquet(pd.DataFrame({"fold": fold}), paths.folds_path(cfg.results_dir, dataset, variant))
    n = len(pd.read_parquet(vdir / "interactions.parquet", columns=["user"]))
    fold = kfold_assignment(n, cfg.folds, cfg.split_seed)
    write_json(vdir / "split.json", {"folds": cfg.folds, "seed": cfg.split_seed,
                                      "sizes": np.bincount(fold, minlength=cfg.folds).tolist()})
    write_parquet(pd.DataFrame({"fold": fold}), paths.folds_path(cfg.results_dir, dataset, variant))


def ensure_fold_inputs(cfg: ProjectConfig, dataset: str, variant: str) -> None:
    """Build whatever data step is missing (for ``cel train`` used outside Snakemake)."""
    if not (paths.prepared_dir(cfg.results_dir, dataset) / "interactions.parquet").exists():
        run_prepare(cfg, dataset)
    if not (paths.variant_dir(cfg.results_dir, dataset, variant) / "interactions.parquet").exists():
        run_variant(cfg, dataset, variant)
    if not paths.folds_path(cfg.results_dir, dataset, variant).exists():
        run_split(cfg, dataset, variant)


def load_fold(cfg: ProjectConfig, spec: RunKey) -> tuple[FoldData, str]:
    """Return the fold's train/test frames and a checksum of exactly the data the run sees."""
    ensure_fold_inputs(cfg, spec.dataset, spec.variant)
    vdir = paths.variant_dir(cfg.results_dir, spec.dataset, spec.variant)
    inter = pd.read_parquet(vdir / "interactions.parquet")
    fold_ids = pd.read_parquet(paths.folds_path(cfg.results_dir, spec.dataset, spec.variant))["fold"].to_numpy()
    if len(fold_ids) != len(inter):
        raise RuntimeError(f"{vdir}: folds.parquet does not match interactions.parquet; rebuild the split")
    meta = json.loads((vdir / "meta.json").read_text())
    data = FoldData.from_tables(inter, fold_ids, spec.fold, meta["users"], meta["items"])
    h = hashlib.sha256()
    for frame in (data.train, data.test):
        for col in ("user", "item", "rating"):
            h.update(np.ascontiguousarray(frame[col].to_numpy()).tobytes())
    return data, h.hexdigest()
