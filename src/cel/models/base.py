"""The interaction-model interface: models take embeddings, never raw ids."""
from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn


class InteractionModel(nn.Module):
    """``forward(user_emb (B, R), item_emb (B, R), **inputs) -> prediction (B,)``.

    A model that needs more than the two embeddings says so, and the Feed's batches carry it:
    ``history_len`` > 0 adds ``history`` (B, H, R) embeddings of the user's earlier items (looked
    up through the same item embedding method) and ``history_mask`` (B, H); each name in
    ``side_features`` adds ``features[name]`` = ((B, F) ids, (B, F) mask).
    """

    history_len: ClassVar[int] = 0
    side_features: ClassVar[tuple[str, ...]] = ()

    def constrain_(self, param: torch.Tensor) -> None:
        """Restore the model's constraint on an embedding parameter after a step (default: none)."""


@runtime_checkable
class PairScorer(Protocol):
    """Models with an exact full-batch path over all observed pairs (dot-product models)."""

    def score_pairs(self, user_table: torch.Tensor, item_table: torch.Tensor, pairs) -> torch.Tensor: ...
