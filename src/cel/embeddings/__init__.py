"""Embedding methods, one per file, registered by the keys used in paper_results.yaml."""
from cel.embeddings.bh import BHEmbedding
from cel.embeddings.base import ClusteredEmbedding, EmbeddingMethod, MethodParams
from cel.embeddings.cel import CELEmbedding
from cel.embeddings.full import FullEmbedding
from cel.embeddings.modulo import ModuloEmbedding

EMBEDDINGS: dict[str, type[EmbeddingMethod]] = {
    "full": FullEmbedding,
    "cel": CELEmbedding,
    "modulo": ModuloEmbedding,
    "bh": BHEmbedding,
}

__all__ = ["EMBEDDINGS", "EmbeddingMethod", "MethodParams", "ClusteredEmbedding", "FullEmbedding", "CELEmbedding", "ModuloEmbedding", "BHEmbedding"]
