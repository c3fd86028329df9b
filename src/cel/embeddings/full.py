"""Vanilla full embedding: one free row per entity (the paper's "full embedding" baseline)."""
from __future__ import annotations

import torch
from torch import nn

from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


class FullEmbedding(EmbeddingMethod):
    Params = MethodParams

    def __init__(self, num_entities, dim, compression, params, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        if compression != 100:
            raise ValueError(f"full embedding stores every row: compression must be 100, got {compression}")
        self.weight = nn.Parameter(init_vectors(num_entities, dim, generator, params.init_scale))  # (M, R)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids]

    def table(self) -> torch.Tensor:
        return self.weight

    def embedding_rows(self) -> int:
        return self.num_entities
