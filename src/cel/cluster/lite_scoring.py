"""Losses and gradients of entities on their buffered interactions (CEL-Lite, Sections 3.4.3-3.4.4).

CEL-Lite evaluates an entity only on the <= n interactions in its replay buffer, given as
(E, n) blocks (``ReplayBuffer.padded``): the other side's embeddings O (E, n, R), the targets
x (E, n) and a validity mask (E, n).

* :func:`candidate_losses` — Eq. 4 restricted to C candidate clusters per entity:
  L[e, c] = Σ_t valid[e, t] · ℓ(y(O[e, t], B_q[cand[e, c]]), x[e, t])          (E, C)
  A dot-product model (:class:`~cel.models.base.PairScorer`) needs one batched matrix product
  (E, C, R) × (E, R, n); a model with ``candidate_scores(side, other, cand)`` (DIN, DeepFM: the
  candidate at the target position, the first layer applied once per side) scores the (E, C, n)
  block itself; any other model runs on (E_c · C · n, R) rows in chunks. O(E C n R).
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


def candidate_losses(model: InteractionModel, side: str, other: torch.Tensor, cand: torch.Tensor,
                     targets: torch.Tensor, valid: torch.Tensor, loss_terms: LossTerms,
                     chunk_elems: int = 1 << 22) -> torch.Tensor:
    """(E, C) loss of each entity's buffered interactions under each candidate embedding.

    other: (E, n, R) other-side embeddings; cand: (E, C, R) candidate cluster embeddings;
    targets, valid: (E, n)."""
    E, C, R = cand.shape
    n = other.shape[1]
    with torch.no_grad():
        if isinstance(model, PairScorer):
            pred = torch.bmm(cand, other.transpose(1, 2))                        # (E, C, n)
            loss = loss_terms(pred, targets[:, None, :].expand_as(pred))
            return (loss * valid[:, None, :]).sum(-1)
        out = torch.empty(E, C, dtype=other.dtype)
        scores = getattr(model, "candidate_scores", None)          # DIN/DeepFM: first layer once per side
        if scores is not None and scores(side, other[:1], cand[:1]) is not None:
            step = max(1, chunk_elems // max(1, C * n * 16))
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
