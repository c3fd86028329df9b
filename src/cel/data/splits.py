"""K-fold cross-validation splits (5 folds = random 80/20 test folds), seeded and recorded."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def kfold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold id of each of ``n`` interactions: a seeded permutation dealt round-robin."""
    perm = np.random.default_rng(seed).permutation(n)
    fold = np.empty(n, dtype=np.int8)
    fold[perm] = np.arange(n) % folds
    return fold


@dataclass
class FoldData:
    """The arrays of one fold; the model sees only index arrays, never a dense matrix."""

    n_users: int
    n_items: int
    train: pd.DataFrame   # user, item, rating, timestamp
    test: pd.DataFrame

    @classmethod
    def from_tables(cls, inter: pd.DataFrame, fold_ids: np.ndarray, fold: int, n_users: int, n_items: int):
        test_mask = fold_ids == fold
        train_mask = ~test_mask & inter["train_ok"].to_numpy()
        cols = ["user", "item", "rating", "timestamp"]
        return cls(n_users, n_items, inter.loc[train_mask, cols].reset_index(drop=True),
                   inter.loc[test_mask, cols].reset_index(drop=True))
