"""Interaction models by registry key."""
from cel.models.base import InteractionModel, PairScorer
from cel.models.nmf import NMF
from cel.models.din import DIN
from cel.models.deepfm import DeepFM

MODELS: dict[str, type[InteractionModel]] = {
    "nmf": NMF,
    "din": DIN,
    "deepfm": DeepFM,
}

__all__ = ["MODELS", "InteractionModel", "PairScorer", "NMF"]
