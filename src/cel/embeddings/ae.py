"""Adaptive Embedding (AE) baseline.

DeepRec (Alibaba). 2021. "Adaptive Embedding".
<https://github.com/alibaba/DeepRec/blob/main/README.md> (the CEL paper's [4]).

Mechanism, as the CEL paper's Appendix D.1 describes it (authoritative here): "we allow the top
M_q/2 warmest items to have their own embedding, and the rest of the items are assigned to share
the other M_q/2 embeddings through the Modulo hash method." Warmth is the number of training
interactions of an entity. Concretely, with M_q = ``budget_rows()`` and W = floor(M_q / 2):

* one table of M_q rows; rows 0..W-1 are private ("warm") rows, rows W..M_q-1 the shared part;
* the W warmest entities (sorted by count, descending; ties broken by the smaller id, so the
  result is deterministic) get rows 0..W-1 in that order (the warmest gets row 0);
* every other entity x gets row W + (x mod (M_q - W)) (Modulo hashing on the raw id into the
  shared part; with an odd M_q the shared part gets the extra row, M_q - W = ceil(M_q / 2)).

The method cannot know the counts at construction, so it starts with counts = 0 for everyone
(i.e. the first W ids are "warm") and the run driver supplies the training fold through
:meth:`AEEmbedding.fit_data` (the ``DataAware`` hook; or call :meth:`set_counts`) before
training (it only remaps entities to rows; the stored
vectors are unchanged). Edge case: M_q = 1 gives W = 0, every entity shares the single row.

Stored at test time: the M_q rows plus the W ids of the warm entities (the warm-id table that
maps a warm id to its private row; everything else is hashed), so ``index_entries() = W``.

With ``grad_avg`` (default, as for Modulo and CEL, Eq. 7) a row's gradient is divided by the
number of entities using it; for a private row that number is 1, so only the shared part is
affected. NMF's nonnegativity (abs) applies to the whole table.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cel.embeddings.base import EmbeddingMethod, MethodParams, TrainingData, init_vectors


@dataclass(frozen=True)
class AEParams(MethodParams):
    grad_avg: bool = True     # divide a row's gradient by the entities using it (as Modulo and CEL)


def ae_rows(counts: torch.Tensor, budget: int) -> torch.Tensor:
    """(M,) row of each entity for the given (M,) interaction counts and M_q = ``budget`` rows."""
    m = counts.numel()
    warm = budget // 2                                            # W
    shared = budget - warm                                        # M_q - W >= 1
    ids = torch.arange(m)
    rows = warm + ids % shared                                    # the modulo part
    order = torch.argsort(-counts.reshape(-1).to(torch.long), stable=True)  # warmest first, ties by id
    top = order[:warm]
    rows[top] = torch.arange(top.numel())                         # private rows 0..W-1
    return rows


class AEEmbedding(EmbeddingMethod):
    Params = AEParams

    def __init__(self, num_entities, dim, compression, params: AEParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        self.buckets = self.budget_rows()                                        # M_q
        self.n_warm = min(self.buckets // 2, num_entities)                       # W
        self.weight = nn.Parameter(init_vectors(self.buckets, dim, generator, params.init_scale))  # (M_q, R)
        self.register_buffer("rows", ae_rows(torch.zeros(num_entities, dtype=torch.long), self.buckets))

    def fit_data(self, data: TrainingData) -> None:
        """DataAware hook: the warm entities are those with the most training interactions."""
        self.set_counts(data.counts())

    def set_counts(self, counts: torch.Tensor) -> None:
        """Remap: the W entities with the most training interactions get the private rows."""
        counts = torch.as_tensor(counts)
        if counts.shape != (self.num_entities,):
            raise ValueError(f"counts must have shape ({self.num_entities},), got {tuple(counts.shape)}")
        self.rows.copy_(ae_rows(counts.cpu(), self.buckets).to(self.rows.device))

    def warm_ids(self) -> torch.Tensor:
        """(W,) ids of the warm entities, in the order of their private rows."""
        return torch.argsort(self.rows)[: self.n_warm] if self.n_warm else self.rows.new_empty(0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[self.rows[ids]]

    def embedding_rows(self) -> int:
        return self.buckets

    def index_entries(self) -> int:
        return self.n_warm

    def shared_rows(self):
        return (self.weight, self.rows) if self.params.grad_avg else None
