"""Losses and gradients of entities on their buffered interactions (CEL-Lite, Sections 3.4.3-3.4.4).

CEL-Lite evaluates an entity only on the <= n interactions in its replay buffer, given as
(E, n) blocks (``ReplayBuffer.padded``): the other side's embeddings O (E, n, R), the targets
x (E, n) and a validity mask (E, n).

* :func:`candidate_losses` — Eq. 4 restricted to C candidate clusters per entity:
  L[e, c] = Σ_t valid[e, t] · ℓ(y(O[e, t], B_q[cand[e, c]]), x[e, t])          (E, C)
  A dot-product model (:class:`~cel.models.base.PairScorer`) needs one batched matrix product
  (E, C, R) × (E, R, n); a model with ``candidate_scores(side, other, cand)`` (DIN, DeepFM, SAML,
  DUPN: the candidate at the target position, whatever does not depend on it computed once per
  side) scores the (E, C, n) block itself; any other model runs on (E_c · C · n, R) rows in
  chunks. O(E C n R).
  Deduplicated first (:func:`_grid_losses`): under clustering the candidates are rows of the
  K-row cluster table and, with a clustered other side, so are the buffered embeddings, so the
  (E, C, n) block holds only U_c × U_o distinct (candidate, other) pairs. When that grid is
  smaller than E·C·n the model runs once per distinct pair, the loss once per distinct
  (pair, target), and L = counts (E, U) @ grid losses (U, U_c), gathered at the candidates: the
  same sums, reordered. Rows are matched by their exact bits (hashed, then verified).
* :func:`buffer_gradients` — Eq. 5's g_e = -∂L/∂B(e, :) with B(e, :) = ``emb`` (E, R) (every
  member of a cluster shares its embedding), by autograd through the model. O(E n R).

``side`` is the side of the scored entities: "item" calls ``model(O, B)``, "user" ``model(B, O)``.
``loss_terms`` is the task's elementwise loss (``Task.loss_terms``).
"""
from __future__ import annotations

from typing import Callable

import torch

from cel.models.base import InteractionModel, PairScorer

LossTerms = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _model(model: InteractionModel, side: str, own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Model outputs for rows of (own, other) embeddings (..., R) -> (...)."""
    shape, R = own.shape[:-1], own.shape[-1]
    own, other = own.reshape(-1, R), other.reshape(-1, R)
    out = model(other, own) if side == "item" else model(own, other)
    return out.reshape(shape)


#: the block path's hidden activations per chunk, at most: memory-bound elementwise layers run ~2x
#: faster on a 4 MB block than on the 16 MB of ``chunk_elems``' default
_CACHE_ELEMS = 1 << 20

_BITS = {torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.float32: torch.int32,
         torch.float64: torch.int64}
_MULT: dict[int, torch.Tensor] = {}


def _unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(N, R) -> (distinct rows (U, R), inverse (N,)) with x == rows[inverse] bit for bit, or None
    (an unsupported dtype or a hash collision). ``torch.unique(dim=0)`` sorts rows and costs
    ~50× more: here one int64 key per row (its bits, xor-folded, times fixed odd multipliers,
    wrapping), a 1-D unique, and a check that every row equals its representative bit for bit."""
    kind = _BITS.get(x.dtype)
    if kind is None or x.dim() != 2:
        return None
    N, R = x.shape
    if N == 0:
        return x, torch.zeros(0, dtype=torch.long)
    x = x.contiguous()
    wide = R * x.element_size() % 8 == 0
    bits = x.view(torch.int64 if wide else kind)                                 # (N, W) the rows' bits
    W = bits.shape[1]
    mult = _MULT.get(W)
    if mult is None:
        mult = _MULT[W] = torch.randint(1, 2 ** 62, (W,), generator=torch.Generator().manual_seed(W)) | 1
    v = bits if wide else bits.to(torch.int64)
    key = ((v ^ (v >> 29)) * mult).sum(1)       # wraps mod 2^64; the fold lets high (sign) bits reach low ones
    _, inv = torch.unique(key, return_inverse=True)
    rep = torch.empty(int(inv.max()) + 1, dtype=torch.long).scatter_(0, inv, torch.arange(N))
    if not torch.equal(bits[rep][inv], bits):                                    # a collision: give up
        return None
    return x[rep], inv


def _grid_losses(model: InteractionModel, side: str, other: torch.Tensor, cand: torch.Tensor,
                 targets: torch.Tensor, valid: torch.Tensor, loss_terms: LossTerms,
                 chunk_elems: int) -> torch.Tensor | None:
    """:func:`candidate_losses` over the distinct (candidate, other) pairs; None when the grid is
    not smaller than the (E, C, n) block (then the block is scored directly)."""
    E, C, R = cand.shape
    n = other.shape[1]
    w = valid.to(other.dtype)
    rows, cols = torch.nonzero(w != 0, as_tuple=True)                            # the V buffered slots that count
    uc = _unique_rows(cand.reshape(-1, R))
    uo = _unique_rows(other[rows, cols])
    if uc is None or uo is None:
        return None
    cu, ci = uc                                                                  # (U_c, R), (E·C,)
    ou, oi = uo                                                                  # (U_o, R), (V,)
    Uc, Uo = len(cu), len(ou)
    if Uc * Uo >= E * C * n:
        return None
    if Uo == 0:                                                                  # nothing buffered
        return torch.zeros(E, C, dtype=other.dtype)
    yu, yi = torch.unique(targets[rows, cols], return_inverse=True)             # distinct targets
    ku, ki = torch.unique(oi * len(yu) + yi, return_inverse=True)               # distinct (other, target)
    ko, ky = ku // len(yu), ku % len(yu)
    grid = torch.empty(Uc, len(ku), dtype=other.dtype)                           # loss of (candidate, (other, target))
    scores = getattr(model, "candidate_scores", None)                           # the model's fast path; None while lazy
    step = max(1, chunk_elems // max(1, Uo * max(R, 16)))
    for c0 in range(0, Uc, step):
        c = cu[c0:c0 + step]
        pred = scores(side, ou[None], c[None]) if scores is not None else None
        if pred is None:
            pred = _model(model, side, c[:, None, :].expand(-1, Uo, R), ou[None].expand(len(c), Uo, R))
        else:
            pred = pred[0]                                                       # (U_c', U_o)
        p = pred[:, ko]
        grid[c0:c0 + step] = loss_terms(p, yu[ky].expand_as(p))
    counts = torch.zeros(E, len(ku), dtype=other.dtype).index_put_((rows, ki), w[rows, cols], accumulate=True)
    return (counts @ grid.T).gather(1, ci.view(E, C))                            # (E, U_c) -> (E, C)


def candidate_losses(model: InteractionModel, side: str, other: torch.Tensor, cand: torch.Tensor,
                     targets: torch.Tensor, valid: torch.Tensor, loss_terms: LossTerms,
                     chunk_elems: int = 1 << 22, dedup: bool = True) -> torch.Tensor:
    """(E, C) loss of each entity's buffered interactions under each candidate embedding.

    other: (E, n, R) other-side embeddings; cand: (E, C, R) candidate cluster embeddings;
    targets, valid: (E, n). ``dedup=False`` always scores the (E, C, n) block (for tests)."""
    E, C, R = cand.shape
    n = other.shape[1]
    with torch.no_grad():
        if isinstance(model, PairScorer):
            pred = torch.bmm(cand, other.transpose(1, 2))                        # (E, C, n)
            loss = loss_terms(pred, targets[:, None, :].expand_as(pred))
            return (loss * valid[:, None, :]).sum(-1)
        if dedup and E:
            out = _grid_losses(model, side, other, cand, targets, valid, loss_terms, chunk_elems)
            if out is not None:
                return out
        out = torch.empty(E, C, dtype=other.dtype)
        scores = getattr(model, "candidate_scores", None)          # the model's fast path: per-side parts once
        if scores is not None and scores(side, other[:1], cand[:1]) is not None:
            step = max(1, min(chunk_elems, _CACHE_ELEMS) // max(1, C * n * 16))     # (E_c, C, n, 16) hidden
            for e0 in range(0, E, step):
                sl = slice(e0, e0 + step)
                pred = scores(side, other[sl], cand[sl])                              # (E_c, C, n)
                loss = loss_terms(pred, targets[sl, None, :].expand_as(pred))
                out[sl] = (loss * valid[sl, None, :]).sum(-1)
            return out
        step = max(1, chunk_elems // max(1, C * n * R))
        for e0 in range(0, E, step):
            sl = slice(e0, e0 + step)
            o = other[sl, None, :, :].expand(-1, C, n, R)                         # (E_c, C, n, R)
            c = cand[sl, :, None, :].expand(-1, C, n, R)
            pred = _model(model, side, c, o)                                      # (E_c, C, n)
            loss = loss_terms(pred, targets[sl, None, :].expand_as(pred))
            out[sl] = (loss * valid[sl, None, :]).sum(-1)
        return out


def buffer_gradients(model: InteractionModel, side: str, other: torch.Tensor, emb: torch.Tensor,
                     targets: torch.Tensor, valid: torch.Tensor, loss_terms: LossTerms) -> torch.Tensor:
    """(E, R) g_e = -∂/∂b_e Σ_t valid · ℓ(y(O[e, t], b_e), x[e, t]) at b_e = ``emb[e]``."""
    x = emb.detach().clone().requires_grad_(True)                                 # (E, R)
    with torch.enable_grad():
        pred = _model(model, side, x[:, None, :].expand_as(other), other.detach())  # (E, n)
        (loss_terms(pred, targets) * valid).sum().backward()
    return -x.grad


__all__ = ["buffer_gradients", "candidate_losses"]
