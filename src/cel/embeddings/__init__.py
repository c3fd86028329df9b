"""Embedding methods, one per file, registered by the keys used in paper_results.yaml."""
from cel.embeddings.ae import AEEmbedding
from cel.embeddings.base import ClusteredEmbedding, CountAware, EmbeddingMethod, MethodParams
from cel.embeddings.bh import BHEmbedding
from cel.embeddings.cel import CELEmbedding
from cel.embeddings.full import FullEmbedding
from cel.embeddings.modulo import ModuloEmbedding
from cel.embeddings.qr import QREmbedding

EMBEDDINGS: dict[str, type[EmbeddingMethod]] = {
    "full": FullEmbedding,
    "cel": CELEmbedding,
    "modulo": ModuloEmbedding,
    "bh": BHEmbedding,
    "ae": AEEmbedding,
    "qr": QREmbedding,
}

__all__ = ["EMBEDDINGS", "EmbeddingMethod", "MethodParams", "ClusteredEmbedding", "FullEmbedding", "CELEmbedding", "ModuloEmbedding", "BHEmbedding", "AEEmbedding",
           "QREmbedding", "CountAware"]
