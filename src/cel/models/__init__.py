"""Interaction models by registry key."""
from cel.models.base import InteractionModel, PairScorer
from cel.models.nmf import NMF

MODELS: dict[str, type[InteractionModel]] = {
    "nmf": NMF,
}

__all__ = ["MODELS", "InteractionModel", "PairScorer", "NMF"]
