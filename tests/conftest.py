"""Shared fixtures: a seeded RNG for every test and tiny synthetic project configs."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("CEL_DATA_MIRROR") or REPO.parent / "shared" / "data" / "movielens")


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def tiny_profile(tmp_path: Path, **overrides) -> dict:
    """A synthetic profile small enough for unit tests (results under tmp_path)."""
    prof = {
        "results_dir": str(tmp_path / "results"),
        "archives_dir": str(tmp_path / "archives"),
        "datasets": {"synth": {"kind": "synthetic", "users": 120, "items": 80, "clusters": 4, "rank": 3,
                               "density": 0.15, "noise": 0.05, "popularity": 0.5, "seed": 1}},
        "variants": {"original": {"kind": "original"}},
        "split": {"folds": 5, "seed": 0},
        "models": {"nmf": {"rank": 6}},
        "methods": {"full": {}},
        "train": {"optimizer": "gd", "lr": 0.002, "steps": 60, "eval_every": 10, "log_every": 1000},
        "grid": [{"datasets": ["synth"], "methods": ["full"], "compressions": [100], "folds": [0]}],
        "mlflow": {"experiment": "test"},
    }
    for k, v in overrides.items():
        prof[k] = v
    return prof


@pytest.fixture
def profile_path(tmp_path):
    def make(**overrides) -> Path:
        p = tmp_path / "profile.yaml"
        p.write_text(yaml.safe_dump(tiny_profile(tmp_path, **overrides)))
        return p
    return make
