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

    def set_history_len(self, history_len: int | None, minimum: int = 1, needs: str | None = None) -> None:
        """Override the class's ``history_len`` with ``history_len`` (``None`` keeps the default).

        A value below ``minimum`` raises ValueError; ``needs`` names a model that cannot work
        without a history, and the message then says so ("DIN needs a history: ...").
        """
        if history_len is None:
            return
        if history_len < minimum:
            prefix = f"{needs} needs a history: " if needs else ""
            raise ValueError(f"{prefix}history_len must be >= {minimum}, got {history_len}")
        self.history_len = history_len


@runtime_checkable
class PairScorer(Protocol):
    """Models with an exact full-batch path over all observed pairs (dot-product models)."""

    def score_pairs(self, user_table: torch.Tensor, item_table: torch.Tensor, pairs) -> torch.Tensor: ...
