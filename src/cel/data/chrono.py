"""Chronological split of the online conversion protocol (Section 4.1.2, READINGS #12).

* test = the last ``test_fraction`` (0.2) of a data set's interactions by time, train = the rest
  (80/20 by time); written as fold ids (0 = test, 1 = train), so a run reads it as fold 0;
* validation = the last ``fraction`` (0.1) by time of the training part (:func:`chrono_holdout`);
* test AUC is taken over the test interactions whose user and item both occur in training
  (``cel.train.run.seen_in_training``), the progressive (predict-then-train) AUC beside it.

Ties of timestamps are broken by the row order of the table (a stable sort), so the split is a
function of the data alone (no seed).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _n_tail(n: int, fraction: float) -> int:
    if not 0 < fraction < 1:
        raise ValueError(f"chronological split: fraction must be in (0, 1), got {fraction}")
    return int(round(n * fraction))


def chrono_assignment(timestamps: np.ndarray, test_fraction: float = 0.2) -> np.ndarray:
    """(n,) fold ids: 0 for the last ``test_fraction`` of the rows by time (the test part), 1 else."""
    ts = np.asarray(timestamps)
    order = np.argsort(ts, kind="stable")
    fold = np.ones(len(ts), dtype=np.int8)
    fold[order[len(ts) - _n_tail(len(ts), test_fraction):]] = 0
    return fold


def chrono_holdout(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier part, last ``fraction`` by time) of a training frame: the validation slice."""
    if fraction <= 0:
        return frame, frame.iloc[:0]
    order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
    cut = len(frame) - _n_tail(len(frame), fraction)
    return (frame.iloc[np.sort(order[:cut])].reset_index(drop=True),
            frame.iloc[np.sort(order[cut:])].reset_index(drop=True))
