"""Synthetic data with a planted cluster structure, following the NMF model of Theorem 1.

X = A · B_qᵀ · S_qᵀ + noise, with A (N, R) ≥ 0, B_q (K, R) ≥ 0 and S_q (M, K) a hard
assignment of every item to one of K clusters (no cluster empty). Only a `density` fraction of
the N × M entries is observed, drawn with a Zipf popularity skew on users and items, as real
interaction data is. No dense N × M matrix is ever built.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SyntheticSpec:
    users: int = 1000
    items: int = 500
    clusters: int = 10
    rank: int = 8
    density: float = 0.05
    noise: float = 0.1
    popularity: float = 1.0
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: dict) -> "SyntheticSpec":
        return cls(**{k: v for k, v in cfg.items() if k != "kind"})


def _zipf_probs(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(w / w.sum())


def _sample_pairs(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, m = spec.users, spec.items
    target = max(1, int(round(spec.density * n * m)))
    pu, pi = _zipf_probs(n, spec.popularity, rng), _zipf_probs(m, spec.popularity, rng)
    seen = np.empty(0, dtype=np.int64)
    for _ in range(50):
        need = target - len(seen)
        if need <= 0:
            break
        draw = max(need * 2, 1024)
        codes = rng.choice(n, draw, p=pu).astype(np.int64) * m + rng.choice(m, draw, p=pi)
        seen = np.unique(np.concatenate([seen, codes]))
    if len(seen) < target:  # heavy skew saturated the popular pairs: top up uniformly
        rest = np.setdiff1d(np.arange(n * m, dtype=np.int64), seen, assume_unique=True)
        seen = np.concatenate([seen, rng.choice(rest, target - len(seen), replace=False)])
    seen = rng.choice(seen, target, replace=False)
    return seen // m, seen % m


def generate(spec: SyntheticSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (interactions, items); items carry the planted cluster in column ``cluster``."""
    if spec.clusters > spec.items:
        raise ValueError(f"synthetic: clusters ({spec.clusters}) > items ({spec.items})")
    rng = np.random.default_rng(spec.seed)
    A = rng.random((spec.users, spec.rank))                     # (N, R)
    Bq = rng.random((spec.clusters, spec.rank))                 # (K, R)
    scale = 3.0 / (spec.rank * 0.25)                            # E[x] ≈ 3, like a rating
    # every cluster non-empty (S_q of full column rank), then the rest at random
    assign = np.concatenate([np.arange(spec.clusters), rng.integers(0, spec.clusters, spec.items - spec.clusters)])
    assign = rng.permutation(assign)                            # (M,)
    u, i = _sample_pairs(spec, rng)
    clean = scale * np.einsum("dr,dr->d", A[u], Bq[assign[i]])
    x = clean + spec.noise * rng.standard_normal(len(u))
    order = np.lexsort((i, u))
    inter = pd.DataFrame({
        "raw_user": u[order], "raw_item": i[order], "rating": x[order],
        "timestamp": np.arange(len(u), dtype=np.int64),
    })
    return inter, planted_items(assign)


def planted_items(assign: np.ndarray) -> pd.DataFrame:
    """The raw items table of planted data: item j of cluster ``assign[j]`` has the genre ``g<k>``
    (so genre-based inits and entropies see the planted structure) and the column ``cluster``."""
    return pd.DataFrame({
        "raw_item": np.arange(len(assign)), "title": [f"item {j}" for j in range(len(assign))],
        "genres": [f"g{k}" for k in assign], "cluster": assign,   # planted cluster as a "genre"
    })
