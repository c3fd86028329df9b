"""Embedding methods, one per file, registered by the keys used in paper_results.yaml."""
from cel.embeddings.ae import AEEmbedding
from cel.embeddings.base import (ClusteredEmbedding, DataAware, EmbeddingMethod, MethodParams, StepAware,
                                 TrainingData, test_time)
from cel.embeddings.bh import BHEmbedding
from cel.embeddings.cel import CELEmbedding
from cel.embeddings.cel_lite import CELLiteEmbedding
from cel.embeddings.cerp import CERPEmbedding
from cel.embeddings.etree import ETreeEmbedding
from cel.embeddings.full import FullEmbedding
from cel.embeddings.hashgnn import HashGNNEmbedding
from cel.embeddings.jnkm import JNKMEmbedding
from cel.embeddings.modulo import ModuloEmbedding
from cel.embeddings.prehash import PreHashEmbedding
from cel.embeddings.qr import QREmbedding

EMBEDDINGS: dict[str, type[EmbeddingMethod]] = {
    "full": FullEmbedding,
    "cel": CELEmbedding,
    "cel_lite": CELLiteEmbedding,
    "modulo": ModuloEmbedding,
    "bh": BHEmbedding,
    "ae": AEEmbedding,
    "qr": QREmbedding,
    "etree": ETreeEmbedding,
    "jnkm": JNKMEmbedding,
    "hashgnn": HashGNNEmbedding,
    "prehash": PreHashEmbedding,
    "cerp": CERPEmbedding,
}

__all__ = ["EMBEDDINGS", "EmbeddingMethod", "MethodParams", "ClusteredEmbedding", "FullEmbedding", "CELEmbedding",
           "ModuloEmbedding", "BHEmbedding", "AEEmbedding", "QREmbedding", "ETreeEmbedding", "JNKMEmbedding",
           "HashGNNEmbedding", "PreHashEmbedding", "CERPEmbedding", "DataAware", "StepAware", "TrainingData", "test_time"]
