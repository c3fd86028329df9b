"""Public embeddings: CEL as a drop-in replacement of ``torch.nn.Embedding``.

Chen, Huzhang, et al. "Clustered Embedding Learning for Recommender Systems", TheWebConf 2023.
The table of M entities is stored as B = S_q · B_q (Eq. 2): a hard assignment S_q, kept as an
index vector ``assign`` (M,), and K <= M_q cluster embeddings B_q (``centroids``, (K_max, R)).
Calling the module maps ids of any shape (...) to embeddings (..., R), like ``nn.Embedding``.

The clusters are learned by a schedule that reads each entity's interactions: splits (Eq. 5-6)
and reassignments (Eq. 4), with gradient averaging (Eq. 7). In your own training loop that is
:class:`cel.ClusterSchedule` (``schedule.step(model, batch)`` after ``optimizer.step()``); in
the project's :class:`cel.train.Trainer` it is the callback :class:`cel.train.ClusterSchedule`.

``compression`` is a **percentage** everywhere in this project: ``compression=5`` stores
M_q = 5% of M cluster rows. ``num_clusters=`` gives M_q directly and is unambiguous.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import torch

from cel.embeddings.cel import CELEmbedding as _CEL
from cel.embeddings.cel import CELParams
from cel.embeddings.cel_lite import CELLiteEmbedding as _CELLite
from cel.embeddings.cel_lite import CELLiteParams

__all__ = ["CELEmbedding", "CELLiteEmbedding"]

#: the default budget when neither ``compression`` nor ``num_clusters`` is given: 5% of M
DEFAULT_COMPRESSION = 5.0


def _budget(num_embeddings: int, compression: float | None, num_clusters: int | None) -> float:
    """The compression in percent from exactly one of ``compression`` (percent) / ``num_clusters``."""
    if compression is not None and num_clusters is not None:
        raise ValueError("give compression= (a percentage) or num_clusters=, not both")
    if num_clusters is not None:
        if int(num_clusters) != num_clusters or num_clusters < 1:
            raise ValueError(f"num_clusters must be a positive integer, got {num_clusters!r}")
        if num_embeddings and num_clusters > num_embeddings:
            raise ValueError(f"num_clusters={num_clusters} exceeds num_embeddings={num_embeddings}")
        return 100.0 * num_clusters / num_embeddings if num_embeddings else DEFAULT_COMPRESSION
    compression = DEFAULT_COMPRESSION if compression is None else float(compression)
    if not 0.0 < compression <= 100.0:
        raise ValueError(f"compression is a percentage in (0, 100] (compression=5 means 5%), got {compression!r}")
    if num_embeddings and round(compression / 100.0 * num_embeddings) < 2:
        warnings.warn(f"compression={compression:g} is a percentage: it leaves a single cluster for "
                      f"{num_embeddings} entities (compression=5 means 5%; or pass num_clusters=)", stacklevel=3)
    return compression


def _params(cls, options: dict, name: str):
    """The method's parameter dataclass from keyword options, unknown names rejected by name."""
    return cls.from_dict(options, name)


class _Substitution:
    """Lets the schedule evaluate the user's model with some entities' embeddings replaced
    (candidate clusters for Eq. 4, free rows for the gradients of Eq. 5), without knowing the model."""

    _substitute: tuple[torch.Tensor, torch.Tensor] | None = None

    @contextlib.contextmanager
    def substituted(self, entities: torch.Tensor, vectors: torch.Tensor) -> Iterator[None]:
        """While active, ``forward`` returns ``vectors[r]`` (R,) for every id equal to
        ``entities[r]``; ``entities`` (E,) unique ids, ``vectors`` (E, R) (may require grad)."""
        top = int(entities.max()) + 1 if len(entities) else 1
        slot = torch.full((top,), -1, dtype=torch.int64)
        slot[entities] = torch.arange(len(entities))
        self._substitute = (slot, vectors)
        try:
            yield
        finally:
            self._substitute = None

    def _apply_substitution(self, ids: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        slot, vectors = self._substitute
        inside = ids < len(slot)
        s = torch.where(inside, slot[ids.clamp(max=len(slot) - 1)], -1)
        return torch.where((s >= 0).unsqueeze(-1), vectors[s.clamp_min(0)].to(out.dtype), out)

    # nn.Embedding-style names
    @property
    def num_embeddings(self) -> int:
        """M, the number of entities (ids 0..M-1)."""
        return self.num_entities

    @property
    def embedding_dim(self) -> int:
        """R, the embedding dimension."""
        return self.dim


class CELEmbedding(_Substitution, _CEL):
    """Clustered embedding of ``num_embeddings`` entities: ``forward(ids (...)) -> (..., R)``.

    B = S_q · B_q (Eq. 2): entity j reads the row B_q[assign[j]] of its cluster. Starts from
    ``m0`` cluster(s) (Appendix A.1) and grows by splits (Eq. 5-6) to the budget M_q; entities
    move to their lowest-loss cluster in reassignments (Eq. 4). Those operations are run by a
    schedule: :class:`cel.ClusterSchedule` in your own loop.

    Args:
        num_embeddings: M, the number of entities (ids 0..M-1), as in ``nn.Embedding``.
        dim: R, the embedding dimension.
        compression: the budget M_q as a **percentage** of M (``compression=5``: 5%); default 5.
        num_clusters: the budget M_q as a number of clusters (instead of ``compression``).
        seed: seeds the initialisation (Appendix D.1) and the schedule's random choices.
        generator: a ``torch.Generator`` to draw from instead of ``seed``.
        **options: CEL's parameters (:class:`cel.embeddings.cel.CELParams`): ``t1`` (steps
            between reassignments, 40), ``t2`` (steps between splits, 10), ``m0`` (initial
            clusters, 1), ``split_threshold`` (d: a cluster splits only with > 2d interactions,
            100), ``delta`` (threshold of Eq. 6), ``grad_avg`` (Eq. 7, True), ``init_centroids``
            (``abs_mean``: nonnegative start as for NMF; ``mean``: signed), ...

    Shapes: ``assign`` (M,) long, ``centroids`` (M_q, R) with the first ``n_clusters`` rows in use.
    Stored at test time: ``num_parameters()`` = K·R + M numbers.
    """

    def __init__(self, num_embeddings: int, dim: int = 64, *, compression: float | None = None,
                 num_clusters: int | None = None, seed: int = 0, generator: torch.Generator | None = None,
                 **options):
        if num_embeddings < 1:
            raise ValueError(f"num_embeddings must be >= 1, got {num_embeddings!r}")
        budget = _budget(num_embeddings, compression, num_clusters)
        params = _params(CELParams, options, "CELEmbedding")
        g = generator if generator is not None else torch.Generator().manual_seed(seed)
        super().__init__(num_embeddings, dim, budget, params, g)
        if num_clusters is not None and self.max_clusters != num_clusters:   # float rounding guard
            raise AssertionError(f"budget {self.max_clusters} != num_clusters {num_clusters}")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(...) long ids -> (..., R) embeddings B_q[assign[ids]] (Eq. 2)."""
        out = super().forward(ids)
        return out if self._substitute is None else self._apply_substitution(ids, out)

    def extra_repr(self) -> str:
        return f"{self.num_entities}, {self.dim}, clusters={self.n_clusters}/{self.max_clusters}"


class CELLiteEmbedding(_Substitution, _CELLite):
    """CEL-Lite (Section 3.4): a clustered embedding for online learning, no vocabulary needed.

    Same B = S_q · B_q (Eq. 2) as :class:`CELEmbedding`; ids are admitted on arrival (the
    training ``forward`` grows the assignment), an id never seen reads cluster 0. The schedule
    (:class:`cel.ClusterSchedule` in your loop) reassigns each batch's entities among their
    cluster and ``m`` random ones (Section 3.4.3) and splits by Strategies 1-2 (Section 3.4.4),
    in O(batch) work per step.

    Args:
        num_embeddings: M when known (0: unknown, ids are admitted as they come).
        dim: R, the embedding dimension.
        compression: the cap M_q as a **percentage** (of M, or of the entities seen so far when
            M is 0); default 5.
        num_clusters: an absolute cap M_q instead.
        seed, generator: as for :class:`CELEmbedding`.
        **options: :class:`cel.embeddings.cel_lite.CELLiteParams`: ``t1`` (1: every batch),
            ``m`` (10 random candidates), ``split_threshold`` (d, 100), ``grad_avg`` (Eq. 7), ...

    Shapes: ``assign`` (M,) over the ids stored so far, ``centroids`` (K, R) growing by doubling,
    ``sizes``/``interactions`` (K,) per-cluster members and interaction counts.
    """

    def __init__(self, num_embeddings: int = 0, dim: int = 64, *, compression: float | None = None,
                 num_clusters: int | None = None, seed: int = 0, generator: torch.Generator | None = None,
                 **options):
        if num_embeddings < 0:
            raise ValueError(f"num_embeddings must be >= 0, got {num_embeddings!r}")
        budget = _budget(num_embeddings, compression, num_clusters)
        if num_clusters is not None:
            options = {**options, "max_clusters": int(num_clusters)}
        params = _params(CELLiteParams, options, "CELLiteEmbedding")
        g = generator if generator is not None else torch.Generator().manual_seed(seed)
        super().__init__(num_embeddings, dim, budget, params, g)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(...) long ids -> (..., R); in training mode new ids are admitted first."""
        out = super().forward(ids)
        return out if self._substitute is None else self._apply_substitution(ids, out)

    def extra_repr(self) -> str:
        return f"{self.num_entities}, {self.dim}, clusters={self.n_clusters}/{self.max_clusters}"
