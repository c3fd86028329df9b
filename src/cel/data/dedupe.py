"""Repeated (user, item) pairs: keep each pair's last interaction by time.

A prepared dataset holds every (user, item) pair once (:func:`cel.data.prepare.prepare_dataset`
refuses duplicates). Sources that can repeat a pair keep its latest row: a csv file under
``duplicates: keep_last`` and the synthetic power-law stream (:mod:`cel.data.stream_source`).
"""
from __future__ import annotations

import numpy as np


def keep_last(users, items, timestamps) -> np.ndarray:
    """Row indices, in row order, that keep one row per (user, item) pair: its last by timestamp,
    ties broken by row order (the later row wins). ``users`` and ``items`` are integer codes >= 0."""
    u, i = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    if not len(u):
        return np.arange(0)
    key = u * (int(i.max()) + 1) + i
    order = np.lexsort((np.arange(len(key)), np.asarray(timestamps), key))   # by pair, then time, then row
    last = np.r_[key[order][1:] != key[order][:-1], True]
    return np.sort(order[last])
