"""Gradient averaging (Appendix D.2, Eq. 7) for any embedding whose rows are shared.

ΔB_q(k,:) = -η / ||S_q(:,k)||_0 · ∂L_k/∂B_q(k,:): after the backward pass, the gradient of a
shared row is divided by the number of entities that use it, so that rows of any size are
updated at a similar pace. Methods opt in through ``EmbeddingMethod.shared_rows()`` (hard
sharing: the divisor counts the entities on a row) or ``row_usage()`` (soft sharing: PreHash
divides by the summed mixture weights of a bucket).
"""
from __future__ import annotations

import torch

from cel.train.trainer import Callback


def average_shared_gradients(emb) -> None:
    usage = emb.row_usage()
    if usage is None:
        return
    params, sizes = usage              # [(K, R) parameters]; (K,) entities (or weights) per row
    for param in params:
        if param.grad is not None:
            param.grad.div_(sizes.to(param.grad.dtype).clamp_min(1.0)[:, None])


class GradientAveraging(Callback):
    def on_after_backward(self, trainer) -> None:
        for emb in (trainer.user_emb, trainer.item_emb):
            average_shared_gradients(emb)
