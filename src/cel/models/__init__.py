"""Interaction models by registry key."""
from cel.models.base import InteractionModel, PairScorer
from cel.models.nmf import NMF
from cel.models.din import DIN
from cel.models.deepfm import DeepFM
from cel.models.dupn import DUPN
from cel.models.saml import SAML

MODELS: dict[str, type[InteractionModel]] = {
    "nmf": NMF,
    "din": DIN,
    "deepfm": DeepFM,
    "dupn": DUPN,
    "saml": SAML,
}

__all__ = ["MODELS", "InteractionModel", "PairScorer", "NMF"]
