"""The training interactions of every entity of one side, in entity-major order.

This is what the clustering algebra (reassignment, Eq. 4; GPCA split, Eq. 5; the split criteria)
needs from the data, whatever Feed delivers the data to the model: the whole training fold (full
and mini-batch feeds) or the interactions seen so far (stream feed; CEL-Lite's replay buffers).

Entity j's interactions are rows ``crow[j]:crow[j+1]``; within an entity they are sorted by the
other side's id, so the (M, N) CSR matrices below are canonical.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class EntityInteractions:
    crow: torch.Tensor        # (M+1,) int64 segment pointers
    other: torch.Tensor       # (D,) int64 id of the other side of each interaction
    targets: torch.Tensor     # (D,) float32 training targets (ratings or 0/1 labels)
    num_other: int            # N, size of the other side

    @classmethod
    def from_arrays(cls, entity, other, targets, num_entities: int, num_other: int) -> "EntityInteractions":
        """Build from unordered (entity, other, target) arrays."""
        entity = torch.tensor(np.asarray(entity), dtype=torch.int64)     # copies (inputs may be read-only)
        other = torch.tensor(np.asarray(other), dtype=torch.int64)
        targets = torch.tensor(np.asarray(targets), dtype=torch.float32)
        order = torch.as_tensor(np.lexsort((other.numpy(), entity.numpy())), dtype=torch.int64)
        crow = torch.zeros(num_entities + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(torch.bincount(entity, minlength=num_entities), 0)
        return cls(crow, other[order].contiguous(), targets[order].contiguous(), num_other)

    @property
    def num_entities(self) -> int:
        return len(self.crow) - 1

    def __len__(self) -> int:
        return len(self.other)

    def counts(self) -> torch.Tensor:
        """(M,) interactions per entity."""
        return self.crow.diff()

    def entity(self) -> torch.Tensor:
        """(D,) the entity of each row."""
        return torch.repeat_interleave(torch.arange(self.num_entities), self.counts())

    def csr(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """(M, N) sparse CSR with ``values`` (default: ones) at the observed (entity, other) pairs."""
        v = torch.ones(len(self)) if values is None else values
        return torch.sparse_csr_tensor(self.crow, self.other, v, (self.num_entities, self.num_other),
                                       check_invariants=False)

    def segment_sum(self, values: torch.Tensor) -> torch.Tensor:
        """(M, ...) per-entity sums of row values (D, ...)."""
        out = torch.zeros((self.num_entities, *values.shape[1:]), dtype=values.dtype)
        return out.index_add_(0, self.entity(), values)
