"""Modulo hashing ("plain hash") baseline.

Weinberger, Dasgupta, Langford, Smola, Attenberg. "Feature Hashing for Large Scale Multitask
Learning", ICML 2009 (the paper's [22]); as used in CEL Section 4: entity x shares row x mod M_q.

Stored at test time: the M_q rows; the hash needs no table. With ``grad_avg`` the gradient of
a row is divided by the number of entities sharing it, the same treatment CEL's clusters get
(Eq. 7), so that the comparison isolates how rows are shared.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


@dataclass(frozen=True)
class ModuloParams(MethodParams):
    grad_avg: bool = True


class ModuloEmbedding(EmbeddingMethod):
    Params = ModuloParams

    def __init__(self, num_entities, dim, compression, params: ModuloParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        self.buckets = self.budget_rows()
        self.weight = nn.Parameter(init_vectors(self.buckets, dim, generator, params.init_scale))   # (M_q, R)
        self.register_buffer("rows", torch.arange(num_entities) % self.buckets)  # (M,) x mod M_q

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[self.rows[ids]]

    def embedding_rows(self) -> int:
        return self.buckets

    def shared_rows(self):
        return (self.weight, self.rows) if self.params.grad_avg else None
