"""Synthetic power-law interaction streams with planted item groups (the NMF model of Theorem 1).

Each interaction d = (u, i) at time t follows

    x_d = s · <A[u], C[g(i)]> + ε,   ε ~ N(0, noise²),   s = 3 / (R · E[a]E[c])  (E[x] ≈ 3, a rating)

with A (N, R) ≥ 0 the users, C (K, R) ≥ 0 the planted group embeddings and g (M,) the planted
group of every item (no group empty: S_q of full column rank), so X = A · Cᵀ · S_qᵀ + noise
exactly as Theorem 1 assumes. C is uniform in [0, 1] (as :mod:`cel.data.synthetic`), or, with
``group_alpha`` > 0, R/2 · Dirichlet(alpha) rows: the same mean, and for small alpha closer to
the "sufficiently scattered" rows Theorem 1 asks for. Users and items are drawn independently with Zipf popularity
p(rank) ∝ rank^(-exponent) over a seeded random order of the ids (a few very warm entities, a
long cold tail; new ids keep appearing as the stream goes on).

Beside the rating every row carries a **conversion label** y ~ Bernoulli(σ(slope · (clean - 3))),
a **scenario** (the user's home scenario with probability ``home``, else uniform) and a
**behaviour type** (0 .. behaviors-1; the last type, e.g. purchase, only on converting rows, half
of them), so that the conversion and multi-scenario issues can reuse the generator.

The stream is produced in chunks of ``chunk`` rows, each from its own seeded generator: nothing
is held per row in Python, a row costs O(R + log N + log M), and the stream is a function of the
spec alone (seed and chunk size included). ``timestamp`` is the row's position in the stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from cel.data.synthetic import _zipf_probs

COLUMNS = ("user", "item", "rating", "timestamp", "label", "scenario", "behavior", "group")


@dataclass(frozen=True)
class StreamSpec:
    rows: int = 1_000_000
    users: int = 100_000
    items: int = 20_000
    groups: int = 20              # planted item groups K
    rank: int = 8                 # R of the generating NMF model
    group_alpha: float = 0.0      # 0: C ~ U(0, 1); > 0: rows ~ R/2 · Dirichlet(alpha) (more scattered when small)
    user_exponent: float = 1.0    # Zipf exponents of the popularity
    item_exponent: float = 1.0
    noise: float = 0.1
    slope: float = 2.0            # conversion: P(y = 1) = σ(slope · (clean - 3))
    scenarios: int = 4
    home: float = 0.8             # share of a user's rows in their home scenario
    behaviors: int = 3
    chunk: int = 1_000_000
    seed: int = 0

    def __post_init__(self):
        if self.groups > self.items:
            raise ValueError(f"stream: groups ({self.groups}) > items ({self.items})")
        if min(self.rows, self.users, self.items, self.groups, self.rank, self.chunk, self.scenarios,
               self.behaviors) < 1:
            raise ValueError("stream: sizes must be >= 1")


@dataclass(frozen=True)
class StreamModel:
    """The generating parameters: users A (N, R), groups C (K, R), item groups g (M,), the
    popularity CDFs and each user's home scenario."""

    A: np.ndarray
    C: np.ndarray
    group: np.ndarray
    user_cdf: np.ndarray
    item_cdf: np.ndarray
    home: np.ndarray
    scale: float

    @classmethod
    def build(cls, spec: StreamSpec) -> "StreamModel":
        rng = np.random.default_rng([spec.seed, 0])
        A = rng.random((spec.users, spec.rank), dtype=np.float32)
        if spec.group_alpha > 0:       # same mean entry (1/2) as U(0, 1), rows spread towards the simplex's corners
            C = (spec.rank / 2 * rng.dirichlet(np.full(spec.rank, spec.group_alpha), spec.groups)).astype(np.float32)
        else:
            C = rng.random((spec.groups, spec.rank), dtype=np.float32)
        group = rng.permutation(np.concatenate([np.arange(spec.groups),
                                                rng.integers(0, spec.groups, spec.items - spec.groups)]))
        user_cdf = np.cumsum(_zipf_probs(spec.users, spec.user_exponent, rng))
        item_cdf = np.cumsum(_zipf_probs(spec.items, spec.item_exponent, rng))
        home = rng.integers(0, spec.scenarios, spec.users)
        return cls(A, C, group.astype(np.int64), user_cdf, item_cdf, home, 3.0 / (spec.rank * 0.25))


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1).astype(np.int64)


def iter_chunks(spec: StreamSpec, model: StreamModel | None = None) -> Iterator[pd.DataFrame]:
    """The stream as frames of at most ``spec.chunk`` rows (columns ``COLUMNS``), in time order."""
    model = model or StreamModel.build(spec)
    for c, start in enumerate(range(0, spec.rows, spec.chunk)):
        size = min(spec.chunk, spec.rows - start)
        rng = np.random.default_rng([spec.seed, 1, c])
        users = _draw(model.user_cdf, rng.random(size))
        items = _draw(model.item_cdf, rng.random(size))
        g = model.group[items]
        clean = model.scale * np.einsum("dr,dr->d", model.A[users], model.C[g])
        rating = clean + spec.noise * rng.standard_normal(size, dtype=np.float32)
        label = rng.random(size) < 1.0 / (1.0 + np.exp(-spec.slope * (clean - 3.0)))
        scenario = np.where(rng.random(size) < spec.home, model.home[users], rng.integers(0, spec.scenarios, size))
        lower = rng.integers(0, max(1, spec.behaviors - 1), size)
        behavior = np.where(label & (rng.random(size) < 0.5), spec.behaviors - 1, lower)
        yield pd.DataFrame({
            "user": users, "item": items, "rating": rating.astype(np.float32),
            "timestamp": np.arange(start, start + size, dtype=np.int64), "label": label.astype(np.int8),
            "scenario": scenario.astype(np.int16), "behavior": behavior.astype(np.int8), "group": g.astype(np.int32),
        })


def generate_stream(spec: StreamSpec) -> pd.DataFrame:
    """The whole stream as one frame (columns ``COLUMNS``, time order)."""
    return pd.concat(list(iter_chunks(spec)), ignore_index=True)


__all__ = ["COLUMNS", "StreamModel", "StreamSpec", "generate_stream", "iter_chunks"]
