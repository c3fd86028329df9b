"""The interaction-model interface: models take embeddings, never raw ids."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


class InteractionModel(nn.Module):
    """``forward(user_emb (B, R), item_emb (B, R)) -> prediction (B,)``."""

    def constrain_(self, param: torch.Tensor) -> None:
        """Restore the model's constraint on an embedding parameter after a step (default: none)."""


@runtime_checkable
class PairScorer(Protocol):
    """Models with an exact full-batch path over all observed pairs (dot-product models)."""

    def score_pairs(self, user_table: torch.Tensor, item_table: torch.Tensor, pairs) -> torch.Tensor: ...
