"""Dataset variants (Section 4.2.3, Table 12): one function, one parameter set.

* ``original``      unchanged;
* ``dense``         drop users and items with <= ``threshold`` interactions (one pass, counts
                    taken on the original data);
* ``sparse``        drop ``drop_fraction`` of each user's interactions at random, keep >= 1;
* ``train_density`` keep only ``fraction`` of each user's interactions *for training*
                    (column ``train_ok``); test folds are unchanged, as in Table 12.

Every variant table has the prepared columns plus ``train_ok``; ids are re-mapped to 0..N-1
after rows are dropped, so that M is the number of items of the variant.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


VARIANT_DEFAULTS = {"threshold": 100, "drop_fraction": 0.5, "fraction": 0.5, "seed": 0}


def per_user_keep_mask(users: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Keep round(n_u * fraction) (at least 1) random interactions of each user u."""
    n = len(users)
    key = rng.random(n)
    order = np.lexsort((key, users))                       # by user, random within user
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)        # 0.. within each user
    keep_n = np.maximum(1, np.floor(counts * fraction + 0.5)).astype(np.int64)
    mask = np.empty(n, dtype=bool)
    mask[order] = rank < np.repeat(keep_n, counts)
    return mask


def _compact(inter: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    users = np.sort(inter["user"].unique())
    kept_items = np.sort(inter["item"].unique())
    inter = inter.assign(
        user=np.searchsorted(users, inter["user"].to_numpy()),
        item=np.searchsorted(kept_items, inter["item"].to_numpy()),
    )
    items = items.set_index("item").loc[kept_items].reset_index().rename(columns={"item": "base_item"})
    items.insert(0, "item", np.arange(len(kept_items), dtype=np.int64))
    return inter.reset_index(drop=True), items


def make_variant(inter: pd.DataFrame, items: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    kind = spec["kind"]
    inter = inter.copy()
    inter["train_ok"] = True
    if kind == "original":
        return inter, items
    spec = {**VARIANT_DEFAULTS, **spec}
    rng = np.random.default_rng(spec["seed"])
    if kind == "dense":
        thr = spec["threshold"]
        uc = inter["user"].map(inter["user"].value_counts())
        ic = inter["item"].map(inter["item"].value_counts())
        inter = inter[(uc > thr) & (ic > thr)]
        if inter.empty:
            raise ValueError(f"variant dense: no interaction left with threshold {thr}")
        return _compact(inter, items)
    if kind == "sparse":
        mask = per_user_keep_mask(inter["user"].to_numpy(), 1.0 - spec["drop_fraction"], rng)
        return _compact(inter[mask], items)
    if kind == "train_density":
        inter["train_ok"] = per_user_keep_mask(inter["user"].to_numpy(), spec["fraction"], rng)
        return inter, items
    raise ValueError(f"unknown variant kind {kind!r}")
