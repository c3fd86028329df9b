"""SAML's scenario on the Amazon 2014 data sets (issue #16: "on Amazon, the top-level category").

SAML (:mod:`cel.models.saml`) takes one scenario per user, ids 1..K (K = ``N_SCENARIOS``), 0 =
unknown. On Amazon it is the user's **home category**:

* an item's categories are its ``top_category`` names in the prepared items table
  (:mod:`cel.data.amazon`): the level below the data set's own root ("PC", "PlayStation 4",
  "Xbox One" under "Video Games"), possibly several per item, possibly none;
* a training row is *in* every category of its item; the categories are ranked by their number of
  training rows (ties: by name), the K-1 first keep ids 1..K-1 in that order and every other
  category is id K, "other";
* a user's home category is the id most of the user's training rows are in (a row in two
  categories that both map to "other" counts once for it; ties: the smaller id, i.e. the more
  frequent category); a user without a training row on a categorised item gets 0.

Only the training rows given count (the run passes its training table, never validation or test
rows), so the scenario carries nothing from the rows the run is evaluated on.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cel.errors import DataError

TOP = "top_category"


def home_categories(items: pd.DataFrame, users: np.ndarray, item_ids: np.ndarray, n_users: int,
                    k: int) -> tuple[np.ndarray, list[str]]:
    """((N,) home-category ids 0..k of every user, the names of ids 1..k-1 in order) from the training
    rows ``(users[j], item_ids[j])`` and the prepared ``items`` table (``item``, ``top_category``)."""
    if TOP not in items:
        raise DataError(f"the items table has no column {TOP!r} (prepared before it existed): "
                        "prepare the Amazon data set again")
    if k < 2:
        raise ValueError(f"need at least 2 scenarios (named categories and 'other'), got {k}")
    per_item = pd.Series(items[TOP].fillna("").to_numpy(), index=items["item"].to_numpy())
    rows = pd.DataFrame({"row": np.arange(len(users)), "user": np.asarray(users, dtype=np.int64),
                         "category": per_item.reindex(np.asarray(item_ids)).fillna("").to_numpy()})
    rows = rows.assign(category=rows["category"].str.split("|")).explode("category")
    rows = rows[rows["category"].notna() & (rows["category"] != "")]
    count = rows["category"].value_counts()
    ranked = sorted(count.index, key=lambda c: (-count[c], c))
    named = ranked[:k - 1]
    rows = rows.assign(sid=rows["category"].map({c: i + 1 for i, c in enumerate(named)}).fillna(k).astype(np.int64))
    per_user = rows.drop_duplicates(["row", "sid"]).groupby(["user", "sid"]).size().reset_index(name="n")
    home = per_user.sort_values(["user", "n", "sid"], ascending=[True, False, True]).drop_duplicates("user")
    ids = np.zeros(n_users, dtype=np.int64)
    ids[home["user"].to_numpy()] = home["sid"].to_numpy()
    return ids, named


__all__ = ["TOP", "home_categories"]
