"""The embedding-method interface every method (full, CEL, hashing baselines, ...) implements.

Shapes: M entities (users or items), R embedding dimension, K clusters/buckets stored.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from cel.config import ConfigError


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameter dataclass; unknown keys are rejected by name."""

    @classmethod
    def from_dict(cls, d: dict | None, key: str = "method"):
        d = dict(d or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                raise ConfigError(f"config unknown key at '{key}.{k}' (known: {', '.join(names) or 'none'})")
            default = names[k].default
            want = type(default)
            ok = (isinstance(v, bool) if want is bool else
                  isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else
                  isinstance(v, int) and not isinstance(v, bool) if want is int else
                  isinstance(v, want))
            if not ok:
                raise ConfigError(f"config invalid value at '{key}.{k}': expected {want.__name__}, got {v!r}")
        return cls(**d)


def init_vectors(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """Appendix D.1: Gaussian entries divided by the maximum absolute value, into [-1, 1].

    The maximum is taken over the whole (n, R) table, not per row: on ML-100k fold 0 (NMF,
    R=64, GD lr 1e-4) the table-wide reading reaches test MSE 0.903 and the per-row one 0.991
    against the paper's 0.9283 (per-row scaling makes initial predictions ~7 instead of ~2).
    The interaction model's constraint (``abs`` for NMF) is applied on top by the trainer.
    """
    v = torch.randn(n, dim, generator=generator)
    return v / v.abs().max().clamp_min(1e-12)


class EmbeddingMethod(nn.Module):
    """``forward(ids) -> (..., R)`` plus what the trainer and the tables need.

    Subclasses set ``Params`` (a :class:`MethodParams` dataclass) and implement ``forward`` and
    ``num_parameters``. ``compression`` is M_q / M in percent (100 = one row per entity).
    """

    Params: ClassVar[type[MethodParams]] = MethodParams
    #: True for a method whose own rule stores more rows than M_q (BH, Appendix D.1); it then
    #: reports its real size in ``embedding_rows()`` and the metrics show both.
    may_exceed_budget: ClassVar[bool] = False

    def __init__(self, num_entities: int, dim: int, compression: float, params: MethodParams,
                 generator: torch.Generator):
        super().__init__()
        self.num_entities, self.dim, self.compression, self.params = num_entities, dim, compression, params

    def budget_rows(self) -> int:
        """M_q = round(compression/100 * M), at least 1: the rows the compression allows."""
        return max(1, int(round(self.compression / 100.0 * self.num_entities)))

    def table(self) -> torch.Tensor:
        """(M, R): the embedding of every entity (used by full-batch training and evaluation)."""
        return self.forward(torch.arange(self.num_entities))

    def embedding_rows(self) -> int:
        """Rows of R numbers stored at test time (M_q for a compressed method)."""
        raise NotImplementedError

    def index_entries(self) -> int:
        """Other numbers stored at test time (assignment indices, codes, weights)."""
        return 0

    def num_parameters(self) -> int:
        """Everything stored at test time: embedding rows × R plus index entries."""
        return self.embedding_rows() * self.dim + self.index_entries()

    def shared_rows(self) -> tuple[nn.Parameter, torch.Tensor] | None:
        """(stored table (K, R), row of each entity (M,)) when rows are shared and their
        gradients should be averaged (Eq. 7); None otherwise."""
        return None

    def penalty(self) -> torch.Tensor | None:
        """An extra loss term of the method (e.g. CEL's personalisation regulariser), or None."""
        return None

    def constrained_parameters(self) -> list[nn.Parameter]:
        """Parameters the interaction model's constraint (e.g. NMF nonnegativity) applies to."""
        return list(self.parameters())


@runtime_checkable
class ClusteredEmbedding(Protocol):
    """Optional cluster hooks; only CEL and CEL-Lite implement them (checked with isinstance)."""

    def assignments(self) -> torch.Tensor: ...
    def split(self, *args, **kwargs): ...
    def reassign(self, *args, **kwargs): ...


@runtime_checkable
class CountAware(Protocol):
    """Methods that need each entity's training interaction count (AE's warm items); the run
    driver calls ``set_counts`` once with the training fold's counts (checked with isinstance)."""

    def set_counts(self, counts: torch.Tensor) -> None: ...
