"""Test helpers shared by several test modules: the one-thread torch fixture and a small planted
ratings frame (used by test_business_models, test_deep_models, test_example, test_public_api).

``one_thread`` is an autouse fixture: a test module that imports it runs every one of its tests
with one intra-op thread.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The run driver's default (``train.threads: 1``): small models are several times faster with
    one intra-op thread, and two on a loaded two-core machine make small steps 100x slower (OpenMP
    contention). The previous thread count is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def planted_ratings(n_users: int, n_items: int, n_obs: int, seed: int = 0, time_step: int = 1) -> pd.DataFrame:
    """``n_obs`` distinct (user, item) pairs rated 1..5 with a planted user and item effect, at
    random times: a permutation of 0..n_obs-1, times ``time_step`` (seconds)."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(n_users * n_items, n_obs, replace=False)
    u, i = codes // n_items, codes % n_items
    bu, bi = rng.normal(0, 0.8, n_users), rng.normal(0, 0.8, n_items)
    r = np.clip(np.round(3 + bu[u] + bi[i] + rng.normal(0, 0.3, n_obs)), 1, 5)
    return pd.DataFrame({"user": u, "item": i, "rating": r, "timestamp": rng.permutation(n_obs) * time_step})
