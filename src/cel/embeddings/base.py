"""The embedding-method interface every method (full, CEL, hashing baselines, ...) implements.

Shapes: M entities (users or items), R embedding dimension, K clusters/buckets stored.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Iterator, Protocol, runtime_checkable

import torch
from torch import nn

from cel.errors import ConfigError


INIT_SCALES = ("table", "vector")


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameter dataclass; unknown keys are rejected by name.

    ``init_scale`` (every method): D.1's scale of the Gaussian initialisation, ``vector`` (each
    row divided by its own maximum absolute value: D.1's literal reading) or ``table`` (the
    whole table by its maximum); README "Implementation notes" records the validation figures.
    """

    init_scale: str = "table"

    def __post_init__(self):
        if self.init_scale not in INIT_SCALES:
            raise ConfigError(f"config invalid value at 'methods.*.init_scale': {self.init_scale!r} "
                              f"(allowed: {', '.join(INIT_SCALES)})")

    @classmethod
    def from_dict(cls, d: dict | None, key: str = "method"):
        d = dict(d or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                raise ConfigError(f"config unknown key at '{key}.{k}' (known: {', '.join(names) or 'none'})")
            default = names[k].default
            want = type(default)
            if default is None:                 # an optional number ("float | None"): None or a number
                want = float if "float" in str(names[k].type) else want
                if v is None:
                    continue
            ok = (isinstance(v, bool) if want is bool else
                  isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else
                  isinstance(v, int) and not isinstance(v, bool) if want is int else
                  isinstance(v, want))
            if not ok:
                raise ConfigError(f"config invalid value at '{key}.{k}': expected {want.__name__}, got {v!r}")
        return cls(**d)


def init_vectors(n: int, dim: int, generator: torch.Generator, scale: str = "table") -> torch.Tensor:
    """Appendix D.1: Gaussian entries divided by the maximum absolute value, into [-1, 1].

    ``scale="vector"`` divides each row by its own maximum (D.1's literal reading: "a vector ...
    divided by the maximum absolute value"); ``"table"`` divides the whole (n, R) table by its
    maximum (per-row scaling makes initial NMF predictions ~7 instead of ~2 on ML-100k). Which
    one a run uses is chosen on validation data (README, "Implementation notes"). The interaction
    model's constraint (``abs`` for NMF) is applied on top by the trainer.
    """
    v = torch.randn(n, dim, generator=generator)
    if scale == "vector":
        return v / v.abs().amax(1, keepdim=True).clamp_min(1e-12)
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
        """(stored table (K, R), row of each entity (M,) or rows (M, B)) when rows are shared
        and their gradients should be averaged (Eq. 7); None otherwise."""
        return None

    def row_usage(self) -> tuple[list[nn.Parameter], torch.Tensor] | None:
        """([row-wise parameters (K, ...)], usage (K,)): how many entities use each row, the
        divisor of gradient averaging (Eq. 7) for every listed parameter. Counted from
        ``shared_rows()``; a method whose entities mix rows with weights (PreHash) overrides it
        with the summed weights, one with more per-row parameters (CERP's thresholds) lists them."""
        shared = self.shared_rows()
        if shared is None:
            return None
        weight, rows = shared
        return [weight], torch.bincount(rows.reshape(-1), minlength=weight.shape[0])

    def penalty(self) -> torch.Tensor | None:
        """An extra loss term of the method (e.g. CEL's personalisation regulariser), or None."""
        return None

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The parameters that hold embedding vectors: the interaction model's constraint (NMF
        nonnegativity) and the norm regulariser of Eq. (8) apply to them. Default: all; a method
        with other parameters (PreHash's hash logits, CERP's pruning thresholds) leaves those out."""
        return list(self.parameters())


@runtime_checkable
class ClusteredEmbedding(Protocol):
    """Optional cluster hooks; only CEL and CEL-Lite implement them (checked with isinstance)."""

    def assignments(self) -> torch.Tensor: ...
    def split(self, *args, **kwargs): ...
    def reassign(self, *args, **kwargs): ...


@dataclass(frozen=True)
class TrainingData:
    """The training interactions as seen from one side (the side the method embeds).

    ``entity`` (D,) ids of this side, ``other`` (D,) ids of the other side, ``ratings`` (D,).
    """

    entity: torch.Tensor
    other: torch.Tensor
    ratings: torch.Tensor
    num_entities: int
    num_other: int

    def counts(self) -> torch.Tensor:
        """(M,) training interactions of each entity (its warmth)."""
        return torch.bincount(self.entity, minlength=self.num_entities)


@runtime_checkable
class DataAware(Protocol):
    """Methods that look at the training fold before training: AE and PreHash (the warmest
    entities), HashGNN (hash pretraining on the interaction graph). The run driver calls
    ``fit_data`` once, before the first step (checked with isinstance)."""

    def fit_data(self, data: TrainingData) -> None: ...


@runtime_checkable
class StepAware(Protocol):
    """Methods with their own schedule outside gradient descent (eTree/JNKM re-cluster their
    leaves, CERP hard-prunes and retrains). :class:`cel.train.method_steps.MethodSteps` calls
    ``on_step(0)`` at fit start and ``on_step(step)`` after every optimiser step, under
    ``torch.no_grad()``; validation selects a step only while ``selectable()`` is True."""

    def on_step(self, step: int) -> None: ...

    def selectable(self) -> bool: ...


@contextlib.contextmanager
def test_time(*modules: nn.Module) -> Iterator[None]:
    """Evaluate what is stored at test time: puts the embeddings in ``eval()`` mode (eTree and
    JNKM share their parents' rows, CERP applies its hard pruning) and restores the mode after."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


test_time.__test__ = False   # not a pytest test despite the name
