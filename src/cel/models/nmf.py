"""NMF interaction model (Section 3.3): y(A_i, B_j) = A_i · B_j with A, B ≥ 0.

Nonnegativity is restored after every step by taking the absolute value (Appendix D.1), or by
clamping at zero. ``score_pairs`` is the exact full-batch path over all observed pairs.
"""
from __future__ import annotations

import torch

from cel.models.base import InteractionModel
from cel.models.pairs import PairIndex, gather_dot


class NMF(InteractionModel):
    def __init__(self, nonneg: str = "abs"):
        super().__init__()
        if nonneg not in ("abs", "clamp", "none"):
            raise ValueError(f"nonneg must be abs|clamp|none, got {nonneg!r}")
        self.nonneg = nonneg

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
        return (user_emb * item_emb).sum(-1)                     # (B, R) -> (B,)

    def score_pairs(self, user_table: torch.Tensor, item_table: torch.Tensor, pairs: PairIndex) -> torch.Tensor:
        return gather_dot(user_table, item_table, pairs)          # (D,)

    @torch.no_grad()
    def constrain_(self, param: torch.Tensor) -> None:
        if self.nonneg == "abs":
            param.abs_()
        elif self.nonneg == "clamp":
            param.clamp_(min=0)
