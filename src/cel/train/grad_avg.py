"""Gradient averaging (Appendix D.2, Eq. 7) for any embedding whose rows are shared.

ΔB_q(k,:) = -η / ||S_q(:,k)||_0 · ∂L_k/∂B_q(k,:): after the backward pass, the gradient of the
*loss* of a shared row is divided by the number of entities that use it, so that rows of any
size are updated at a similar pace. Methods opt in through ``EmbeddingMethod.shared_rows()``
(hard sharing: the divisor counts the entities on a row) or ``row_usage()`` (soft sharing:
PreHash divides by the summed mixture weights of a bucket).

Scope (``train.grad_avg_scope``): ``loss`` (D.2: L_k is the loss of cluster k, so the norm
regulariser of Eq. 8, λ·r·θ for the batch's regulariser scale r, keeps its full weight; method
penalties count as loss) or ``all`` (the whole gradient, the earlier reading, kept as an ablation).
The divisor counts members over the whole data in every Feed, never the rows of a batch.
"""
from __future__ import annotations

import torch

from cel.train.trainer import Callback

SCOPES = ("loss", "all")


def average_shared_gradients(emb, reg: float = 0.0) -> None:
    """Divide shared rows' gradients by their usage; ``reg`` = λ·r: the Eq. 8 part stays whole."""
    usage = emb.row_usage()
    if usage is None:
        return
    params, sizes = usage              # [(K, R) parameters]; (K,) entities (or weights) per row
    regularised = {id(p) for p in emb.embedding_parameters()} if reg else set()
    for param in params:
        if param.grad is None:
            continue
        div = sizes.to(param.grad.dtype).clamp_min(1.0)[:, None]
        if id(param) in regularised:
            g_reg = reg * param.detach()
            param.grad.sub_(g_reg).div_(div).add_(g_reg)
        else:
            param.grad.div_(div)


class GradientAveraging(Callback):
    def __init__(self, scope: str = "loss"):
        if scope not in SCOPES:
            raise ValueError(f"gradient averaging scope must be one of {SCOPES}, got {scope!r}")
        self.scope = scope

    def on_after_backward(self, trainer) -> None:
        reg = trainer.reg * trainer.batch.reg_scale if self.scope == "loss" else 0.0
        for emb in (trainer.user_emb, trainer.item_emb):
            average_shared_gradients(emb, reg)
