"""Gradient averaging (Appendix D.2, Eq. 7) for any embedding whose rows are shared.

ΔB_q(k,:) = -η / ||S_q(:,k)||_0 · ∂L_k/∂B_q(k,:): after the backward pass, the gradient of a
shared row is divided by the number of entities that use it, so that rows of any size are
updated at a similar pace. Methods opt in through ``EmbeddingMethod.shared_rows()``.
"""
from __future__ import annotations

import torch

from cel.train.trainer import Callback


def average_shared_gradients(emb) -> None:
    shared = emb.shared_rows()
    if shared is None:
        return
    weight, rows = shared              # (K, R) parameter; (M,) or (M, B) row(s) of each entity
    if weight.grad is None:
        return
    sizes = torch.bincount(rows.reshape(-1), minlength=weight.shape[0]).clamp_min(1)
    weight.grad.div_(sizes[:, None].to(weight.grad.dtype))


class GradientAveraging(Callback):
    def on_after_backward(self, trainer) -> None:
        for emb in (trainer.user_emb, trainer.item_emb):
            average_shared_gradients(emb)
