"""Cluster split (Section 3.2.2, Appendix A.3): which side of the split each member goes to.

A splitter takes the context of one cluster (its members' gradients, optional representations)
and returns a boolean mask: True = the member moves to the new cluster M_q + 1 (Eq. 6).

* ``gpca``               Eq. (5)-(6): first principal component p of the normalised gradient
                         matrix G (n_k, R); score g_jᵀp against the threshold δ.
* ``random_projection``  as GPCA, with a random direction instead of p (Table 6).
* ``random``             random halves (Table 6).
* ``bisect_gradient``    bisecting 2-means on the gradients (Table 6, DHC-style).
* ``bisect_user``        bisecting 2-means on user-inspired representations: an item is the
                         mean embedding of the users who rated it (Table 6).

Thresholds δ: ``zero`` (the default, A.3.3), ``median`` of the scores, or ``balanced``: the
weighted median that balances the members' interaction counts, found by quickselect.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class SplitContext:
    grads: torch.Tensor                 # (n_k, R) g_j = -∂L/∂B(j,:) of the members
    counts: torch.Tensor                # (n_k,) training interactions of each member
    generator: torch.Generator
    delta: str = "zero"
    normalize: str = "center"
    reps: Callable[[], torch.Tensor] | None = None   # (n_k, R) user-inspired representations


def normalise(G: torch.Tensor, how: str) -> torch.Tensor:
    """Standard pre-PCA normalisation of G: centre the columns (``center``), also scale them to
    unit variance (``standardize``), or leave G as it is (``none``)."""
    if how == "none":
        return G
    G = G - G.mean(0, keepdim=True)
    if how == "standardize":
        G = G / G.std(0, keepdim=True).clamp_min(1e-12)
    return G


def first_principal_component(G: torch.Tensor) -> torch.Tensor:
    """Eq. (5): p = argmax_{||p||=1} pᵀ GᵀG p, the top eigenvector of the (R, R) matrix GᵀG."""
    cov = G.double().T @ G.double()
    _, vecs = torch.linalg.eigh(cov)
    return vecs[:, -1].to(G.dtype)


def weighted_quickselect(values: np.ndarray, weights: np.ndarray) -> float:
    """Smallest v such that the weight of {values <= v} reaches half the total: O(n) expected."""
    values, weights = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    half, below = weights.sum() / 2.0, 0.0
    rng = np.random.default_rng(0)
    while True:
        pivot = values[rng.integers(len(values))]
        lo, eq = values < pivot, values == pivot
        w_lo, w_eq = weights[lo].sum(), weights[eq].sum()
        if below + w_lo >= half and lo.any():
            values, weights = values[lo], weights[lo]
        elif below + w_lo + w_eq >= half:
            return float(pivot)
        else:
            below += w_lo + w_eq
            hi = ~(lo | eq)
            values, weights = values[hi], weights[hi]


def threshold(scores: torch.Tensor, ctx: SplitContext) -> float:
    if ctx.delta == "zero":
        return 0.0
    if ctx.delta == "median":
        return float(scores.median())
    if ctx.delta == "balanced":
        # v = weighted median of the scores (quickselect). Scores >= δ go to the new cluster
        # (Eq. 6): δ = v sends v over, δ just above v keeps it; take the better-balanced one.
        s, w = scores.double().numpy(), ctx.counts.double().numpy()
        v = weighted_quickselect(s, w)
        total, below, upto = w.sum(), w[s < v].sum(), w[s <= v].sum()
        above_v = float(torch.nextafter(torch.tensor(v, dtype=scores.dtype), torch.tensor(float("inf"), dtype=scores.dtype)))
        options = [(abs(2 * below - total), v), (abs(2 * upto - total), above_v)]
        options = [o for o in options if 0 < (below if o[1] == v else upto) < total] or options
        return float(min(options)[1])
    raise ValueError(f"unknown threshold delta {ctx.delta!r}")


def _project(direction: torch.Tensor, G: torch.Tensor, ctx: SplitContext) -> torch.Tensor:
    scores = G @ direction
    return scores >= threshold(scores, ctx)        # Eq. (6): >= δ goes to the new cluster


def split_gpca(ctx: SplitContext) -> torch.Tensor:
    G = normalise(ctx.grads, ctx.normalize)
    return _project(first_principal_component(G), G, ctx)


def split_random_projection(ctx: SplitContext) -> torch.Tensor:
    G = normalise(ctx.grads, ctx.normalize)
    d = torch.randn(G.shape[1], generator=ctx.generator, dtype=G.dtype)
    return _project(d / d.norm(), G, ctx)


def split_random(ctx: SplitContext) -> torch.Tensor:
    n = len(ctx.grads)
    perm = torch.randperm(n, generator=ctx.generator)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[perm[: n // 2]] = True
    return mask


def bisect_2means(X: torch.Tensor, generator: torch.Generator, iters: int = 20) -> torch.Tensor:
    """2-means (k-means++ seeding); True = second cluster."""
    n = len(X)
    first = X[torch.randint(n, (1,), generator=generator)]
    d = (X - first).pow(2).sum(1)
    if d.sum() <= 0:
        return split_random(SplitContext(X, torch.ones(n), generator))
    second = X[torch.multinomial(d / d.sum(), 1, generator=generator)]
    c = torch.cat([first, second])
    for _ in range(iters):
        assign = torch.cdist(X, c).argmin(1).bool()
        for k, m in enumerate((~assign, assign)):
            if m.any():
                c[k] = X[m].mean(0)
    return torch.cdist(X, c).argmin(1).bool()


def split_bisect_gradient(ctx: SplitContext) -> torch.Tensor:
    return bisect_2means(normalise(ctx.grads, ctx.normalize), ctx.generator)


def split_bisect_user(ctx: SplitContext) -> torch.Tensor:
    if ctx.reps is None:
        raise ValueError("bisect_user needs user-inspired representations")
    return bisect_2means(ctx.reps(), ctx.generator)


SPLITTERS: dict[str, Callable[[SplitContext], torch.Tensor]] = {
    "gpca": split_gpca,
    "random_projection": split_random_projection,
    "random": split_random,
    "bisect_gradient": split_bisect_gradient,
    "bisect_user": split_bisect_user,
}


def split_mask(method: str, ctx: SplitContext) -> torch.Tensor:
    """The splitter's mask, never degenerate: if one side is empty, fall back to the median of
    the GPCA scores, then to random halves (a cluster of >= 2 members always splits in two)."""
    mask = SPLITTERS[method](ctx)
    if 0 < int(mask.sum()) < len(mask):
        return mask
    G = normalise(ctx.grads, ctx.normalize)
    scores = G @ first_principal_component(G)
    mask = scores > scores.median()
    if 0 < int(mask.sum()) < len(mask):
        return mask
    return split_random(ctx)
