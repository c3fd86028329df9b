"""Cluster reassignment (Section 3.2.1, Eq. 4): every entity moves to the cluster whose
embedding gives it the lowest loss on its own training interactions.

    loss(j, k) = Σ_{d: entity(d) = j} (x_d - y(other_d, B_q[k]))²            (M, K)

Generic path: candidate clusters are evaluated in chunks through any interaction model.
Dot-product fast path (exact): predictions of every interaction under every candidate in a
chunk are one GEMM ``other @ B_q[chunk]ᵀ`` (D, K_c), squared errors accumulated per entity with
``index_add_``. Memory is bounded by ``chunk_elems``; no dense N × M matrix is built.
"""
from __future__ import annotations

import torch

from cel.models.base import InteractionModel, PairScorer


def cluster_losses(model: InteractionModel, other: torch.Tensor, entity: torch.Tensor, x: torch.Tensor,
                   centroids: torch.Tensor, n_entities: int, side: str = "item",
                   chunk_elems: int = 1 << 22) -> torch.Tensor:
    """(M, K) loss of every entity under every candidate cluster.

    other:     (D, R) embedding of the other side of each interaction (users when clustering items)
    entity:    (D,) entity index of each interaction; x: (D,) targets; centroids: (K, R)
    """
    D, R = other.shape
    K = centroids.shape[0]
    out = torch.zeros(n_entities, K, dtype=torch.float64)
    fast = isinstance(model, PairScorer)
    per_chunk = max(1, chunk_elems // max(1, D * (1 if fast else R)))
    for k0 in range(0, K, per_chunk):
        c = centroids[k0:k0 + per_chunk]                           # (K_c, R)
        if fast:
            pred = other @ c.T                                      # (D, K_c) one GEMM
        else:
            o = other[:, None, :].expand(D, len(c), R)
            cc = c[None, :, :].expand(D, len(c), R)
            pred = model(o, cc) if side == "item" else model(cc, o)  # (D, K_c)
        err = (x[:, None] - pred).pow(2).double()
        out[:, k0:k0 + len(c)].index_add_(0, entity, err)
    return out


def reassign(losses: torch.Tensor, current: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """argmin over clusters; entities without training interactions keep their cluster, and a
    tie keeps the current cluster (so a reassignment never increases the training loss)."""
    best = losses.argmin(1)
    cur_loss = losses.gather(1, current[:, None])[:, 0]
    keep = (counts == 0) | (cur_loss <= losses.gather(1, best[:, None])[:, 0])
    return torch.where(keep, current, best)
