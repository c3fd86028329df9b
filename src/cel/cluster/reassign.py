"""Cluster reassignment (Section 3.2.1, Eq. 4): every entity moves to the cluster whose
embedding gives it the lowest loss on its own training interactions.

    loss(j, k) = Σ_{d ∈ D_j} (x_d - y(o_d, B_q[k]))²                              (M, K)

Interactions come in *entity-major* order: those of entity j are rows crow[j]:crow[j+1].

Generic path: candidate clusters are evaluated in chunks through any interaction model, and
squared errors are summed per entity with ``index_add_``.

Dot-product fast path (exact): Σ_d (x_d - o_d·b_k)² = Σ_d x_d² - 2 (Σ_d x_d o_d)·b_k
+ Σ_d (o_d·b_k)². The cross term is a small (M, R) @ (R, K) product; the last term needs
P = O @ B_qᵀ, one GEMM per chunk of clusters, squared in place and summed per entity by a
CSR (M, D) × (D, K_c) product. No dense N × M matrix is built; memory is bounded by
``chunk_elems``.
"""
from __future__ import annotations

import torch

from cel.models.base import InteractionModel, PairScorer


def segment_matrix(crow: torch.Tensor, n_rows: int) -> torch.Tensor:
    """(M, D) CSR of ones: row j sums the entity-major rows crow[j]:crow[j+1]."""
    D = int(crow[-1])
    return torch.sparse_csr_tensor(crow, torch.arange(D), torch.ones(D), (n_rows, D), check_invariants=False)


def cluster_losses(model: InteractionModel, other: torch.Tensor, x: torch.Tensor, centroids: torch.Tensor,
                   crow: torch.Tensor, side: str = "item", chunk_elems: int = 1 << 22) -> torch.Tensor:
    """(M, K) loss of every entity under every candidate cluster.

    other:  (D, R) embedding of the other side of each interaction, entity-major
    x:      (D,) targets, entity-major;  centroids: (K, R);  crow: (M+1,) segment pointers
    """
    D, R = other.shape
    K, M = centroids.shape[0], len(crow) - 1
    out = torch.empty(M, K, dtype=torch.float32)
    if isinstance(model, PairScorer):
        seg = segment_matrix(crow, M)
        sq = (seg @ (x * x)[:, None]).squeeze(1)                   # (M,)  Σ x²
        cross = seg @ (x[:, None] * other)                          # (M, R) Σ x o
        per_chunk = max(1, chunk_elems // max(1, D))
        for k0 in range(0, K, per_chunk):
            c = centroids[k0:k0 + per_chunk]                        # (K_c, R)
            P = other @ c.T                                          # (D, K_c) one GEMM
            out[:, k0:k0 + len(c)] = seg @ P.square_()              # Σ (o·b)²
        out += sq[:, None] - 2.0 * (cross @ centroids.T)
        return out
    entity = torch.repeat_interleave(torch.arange(M), crow.diff())
    out.zero_()
    per_chunk = max(1, chunk_elems // max(1, D * R))
    for k0 in range(0, K, per_chunk):
        c = centroids[k0:k0 + per_chunk]
        o = other[:, None, :].expand(D, len(c), R)
        cc = c[None, :, :].expand(D, len(c), R)
        pred = model(o, cc) if side == "item" else model(cc, o)    # (D, K_c)
        out[:, k0:k0 + len(c)].index_add_(0, entity, (x[:, None] - pred).pow(2))
    return out


def reassign(losses: torch.Tensor, current: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """argmin over clusters; entities without training interactions keep their cluster, and a
    tie keeps the current cluster (so a reassignment never increases the training loss)."""
    best = losses.argmin(1)
    cur_loss = losses.gather(1, current[:, None])[:, 0]
    keep = (counts == 0) | (cur_loss <= losses.gather(1, best[:, None])[:, 0])
    return torch.where(keep, current, best)
