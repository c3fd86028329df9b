"""Cluster reassignment (Section 3.2.1, Eq. 4): every entity moves to the cluster whose embedding
gives it the lowest loss on its own training interactions.

    L[j, k] = Σ_{d ∈ D_j} ℓ(y(o_d, B_q[k]), x_d)                                       (M, K)

Letters: M entities of the clustered side, N entities of the other side, K candidate clusters,
D training interactions, R embedding dimension. The interactions come as an
:class:`~cel.cluster.interactions.EntityInteractions` (entity-major, other-side ids ``o_d``,
targets ``x_d``).

Under candidate k an entity's embedding *is* B_q[k], so for a dot-product model
(:class:`~cel.models.base.PairScorer`) the prediction depends only on (o_d, k): it is an entry of
the small table P = A_o B_qᵀ (N, K). Exact fast paths from P, per chunk of K_c candidates:

* squared error (``loss_terms=None``):  L = Σx² − 2 X P + W (P∘P), with X, W the (M, N) CSR
  matrices of targets and of ones: one GEMM and two sparse × dense products per chunk (when
  K > R, X P = (X A_o) B_qᵀ: one (M, R) product for all chunks);
* any other elementwise loss, few distinct targets v (0/1 labels, star ratings):
  L = Σ_v W_v ℓ(P, v), W_v the CSR of ones at the interactions with target v (together nnz D);
* otherwise: ℓ(P[o_d, k], x_d) on gathered (D_c, K_c) rows, summed per entity.

No dense N × M matrix and no (D, K) matrix is built. The generic path (any model, any loss)
evaluates the model on gathered (D_c, K_c, R) other-side rows against the candidates. Every
dense temporary is bounded by ``chunk_elems`` elements (besides the (M, K) result); the sparse
matrices hold D entries.
"""
from __future__ import annotations

from typing import Callable

import torch

from cel.cluster.interactions import EntityInteractions
from cel.models.base import InteractionModel, PairScorer

LossTerms = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: the distinct-target grouping is used up to this many distinct target values
MAX_TARGET_GROUPS = 16
#: the (N, K_c) prediction table of a chunk stays under this many elements (4 MiB in float32): the
#: sparse × dense products read its rows at random, and a table that fits the cache is 2-3x faster
CACHE_ELEMS = 1 << 20


def cluster_losses(model: InteractionModel, other_table: torch.Tensor, inter: EntityInteractions,
                   centroids: torch.Tensor, side: str = "item", loss_terms: LossTerms | None = None,
                   chunk_elems: int = 1 << 22) -> torch.Tensor:
    """(M, K) training loss of every entity under every candidate cluster (Eq. 4).

    model:       interaction model, ``model(user_emb, item_emb)``
    other_table: (N, R) embedding table of the other side (not differentiated)
    inter:       the M clustered entities' training interactions (D rows, other ids in [0, N))
    centroids:   (K, R) candidate cluster embeddings B_q
    side:        "item" when the clustered entities are items (model(other, cand)), else "user"
                 (model(cand, other))
    loss_terms:  elementwise loss ``fn(pred, y)`` (e.g. ``Task.loss_terms``); None means squared
                 error (pred - y)², the exact algebraic path
    chunk_elems: bound on the elements of each dense temporary

    A :class:`PairScorer` model is taken to predict the dot product A_i · B_j (the exact fast
    paths, for any ``loss_terms``; ``side`` does not matter there); any other model is evaluated
    through ``forward`` on (B, R) batches. Returns the losses in the dtype of ``other_table``
    (float32 in training); an entity without interactions has loss 0 under every cluster.
    """
    if side not in ("item", "user"):
        raise ValueError(f"side must be 'item' or 'user', got {side!r}")
    if other_table.shape[0] != inter.num_other:
        raise ValueError(f"other_table has {other_table.shape[0]} rows, interactions expect {inter.num_other}")
    with torch.no_grad():
        other_table, centroids = other_table.detach(), centroids.detach().to(other_table.dtype)
        if isinstance(model, PairScorer):
            return _dot_losses(other_table, inter, centroids, loss_terms, chunk_elems)
        return _generic_losses(model, other_table, inter, centroids, side, loss_terms, chunk_elems)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _target_groups(inter: EntityInteractions, dtype: torch.dtype) -> list[tuple[float, torch.Tensor]] | None:
    """[(v, W_v (M, N) CSR of ones at the interactions with target v)] when there are at most
    MAX_TARGET_GROUPS distinct targets, else None. Integer targets skip the sort of ``unique``."""
    x = inter.targets
    if len(x) == 0:
        return []
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < MAX_TARGET_GROUPS and bool((x == x.round()).all()):
        group, values = (x - lo).long(), [lo + v for v in range(int(hi - lo) + 1)]
    else:
        uniq, group = torch.unique(x, return_inverse=True)
        if len(uniq) > MAX_TARGET_GROUPS:
            return None
        values = uniq.tolist()
    out = []
    for g, v in enumerate(values):
        sel = group == g
        before = torch.zeros(len(x) + 1, dtype=torch.int64)
        torch.cumsum(sel, 0, out=before[1:])                  # group-g rows before each row
        crow = before[inter.crow]                             # rows of entity j: crow[j]:crow[j+1]
        if int(crow[-1]):
            out.append((v, _csr(crow, inter.other[sel], torch.ones(int(crow[-1]), dtype=dtype),
                                (inter.num_entities, inter.num_other))))
    return out


def _dot_losses(A: torch.Tensor, inter: EntityInteractions, C: torch.Tensor, loss_terms: LossTerms | None,
                chunk_elems: int) -> torch.Tensor:
    """Exact losses of a dot-product model from the prediction table P = A Cᵀ, A (N, R) the other
    side's table, computed in (N, K_c) chunks."""
    M, N, K, R = inter.num_entities, inter.num_other, C.shape[0], A.shape[1]
    dtype = A.dtype
    x = inter.targets.to(dtype)
    out = torch.empty(M, K, dtype=dtype)
    per_chunk = max(1, min(chunk_elems, CACHE_ELEMS) // max(1, N, M))
    chunks = [(k0, C[k0:k0 + per_chunk]) for k0 in range(0, K, per_chunk)]
    if loss_terms is None:                                   # Σx² − 2 X P + W (P∘P)
        W, X = inter.csr(torch.ones_like(x)), inter.csr(x)
        csum = torch.zeros(len(x) + 1, dtype=torch.float64)
        torch.cumsum(x.double().square(), 0, out=csum[1:])
        sq = (csum[inter.crow[1:]] - csum[inter.crow[:-1]]).to(dtype)    # (M,) Σ_{d ∈ D_j} x_d²
        XA = X @ A if K > R else None                        # (M, R): X P = (X A) Cᵀ, cheaper when K > R
        for k0, c in chunks:
            P = A @ c.T                                                   # (N, K_c)
            L = W @ P.square()
            L.add_(X @ P if XA is None else XA @ c.T, alpha=-2.0).add_(sq[:, None])
            out[:, k0:k0 + len(c)] = L
        return out
    groups = _target_groups(inter, dtype)
    if groups is not None:                                   # Σ_v W_v ℓ(P, v)
        for k0, c in chunks:
            P = A @ c.T
            L = torch.zeros(M, len(c), dtype=dtype)
            for v, W in groups:
                L += W @ loss_terms(P, torch.full_like(P, v))
            out[:, k0:k0 + len(c)] = L
        return out
    entity = inter.entity()
    for k0, c in chunks:                                     # ℓ(P[o_d, k], x_d), gathered rows
        P = A @ c.T
        _segment_sum(out[:, k0:k0 + len(c)], entity, x, lambda d: P[inter.other[d]], loss_terms,  # noqa: B023
                     max(1, chunk_elems // len(c)))
    return out


def _generic_losses(model: InteractionModel, other_table: torch.Tensor, inter: EntityInteractions,
                    C: torch.Tensor, side: str, loss_terms: LossTerms | None, chunk_elems: int) -> torch.Tensor:
    """Any model, any loss: the model on gathered (D_c, K_c, R) other rows × candidates."""
    (D, R), K = (len(inter), other_table.shape[1]), C.shape[0]
    cap = max(1, chunk_elems // R)                           # D_c · K_c per piece
    k_step = min(max(K, 1), max(1, cap // max(1, D)))        # all D rows at once when that fits
    d_step = max(1, cap // k_step)
    entity, x = inter.entity(), inter.targets.to(other_table.dtype)
    out = torch.empty(inter.num_entities, K, dtype=other_table.dtype)
    for k0 in range(0, K, k_step):
        c = C[k0:k0 + k_step]                                              # (K_c, R)

        def predict(d: slice) -> torch.Tensor:
            o = other_table[inter.other[d]]                                # (D_c, R)
            shape = (o.shape[0], c.shape[0], R)
            oo, cc = o[:, None, :].expand(shape).reshape(-1, R), c[None, :, :].expand(shape).reshape(-1, R)
            return (model(oo, cc) if side == "item" else model(cc, oo)).reshape(shape[:2])

        _segment_sum(out[:, k0:k0 + len(c)], entity, x, predict, loss_terms, d_step)
    return out


def _segment_sum(out: torch.Tensor, entity: torch.Tensor, x: torch.Tensor,
                 predict: Callable[[slice], torch.Tensor], loss_terms: LossTerms | None, d_step: int) -> None:
    """out (M, K_c) = per-entity sums of ℓ(predict(d), x_d) over row pieces d of d_step rows."""
    out.zero_()
    for d0 in range(0, len(x), d_step):
        d = slice(d0, d0 + d_step)
        pred = predict(d)                                                 # (D_c, K_c)
        y = x[d, None].expand_as(pred)
        out.index_add_(0, entity[d], (pred - y).square_() if loss_terms is None else loss_terms(pred, y))


def reassign(losses: torch.Tensor, current: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """argmin over clusters; entities without training interactions keep their cluster, and a
    tie keeps the current cluster (so a reassignment never increases the training loss)."""
    best = losses.argmin(1)
    cur_loss = losses.gather(1, current[:, None])[:, 0]
    keep = (counts == 0) | (cur_loss <= losses.gather(1, best[:, None])[:, 0])
    return torch.where(keep, current, best)
