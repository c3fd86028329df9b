"""Which cluster to split next (Appendix A.3.2, Figure 6). The default is ``interactions``.

Each criterion maps per-entity statistics to a per-cluster score; the cluster with the
largest score among the splittable ones is split: at least two members and, with the split
threshold d of A.1, more than 2d training interactions (Strategy 2; the cap M_q is the caller's).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClusterStats:
    assign: torch.Tensor        # (M,) cluster of each entity
    n_clusters: int
    counts: torch.Tensor        # (M,) training interactions per entity
    grads: torch.Tensor | None = None   # (M, R) per-entity gradients
    losses: torch.Tensor | None = None  # (M,) per-entity training loss

    def per_cluster(self, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n_clusters, dtype=torch.float64)
        return out.index_add_(0, self.assign, values.double())


def grad_norm(s: ClusterStats) -> torch.Tensor:
    """trace(G_kᵀ G_k) = Σ_j∈k ||g_j||²."""
    return s.per_cluster(s.grads.pow(2).sum(1))


def total_loss(s: ClusterStats) -> torch.Tensor:
    """L_k."""
    return s.per_cluster(s.losses)


def mean_loss(s: ClusterStats) -> torch.Tensor:
    """L_k / ||S_q(:, k)||_0."""
    return total_loss(s) / entities(s).clamp_min(1)


def entities(s: ClusterStats) -> torch.Tensor:
    """||S_q(:, k)||_0."""
    return s.per_cluster(torch.ones_like(s.counts, dtype=torch.float64))


def interactions(s: ClusterStats) -> torch.Tensor:
    """||W S_q(:, k)||_0."""
    return s.per_cluster(s.counts)


CRITERIA = {"grad_norm": grad_norm, "total_loss": total_loss, "mean_loss": mean_loss,
            "entities": entities, "interactions": interactions}
NEEDS_LOSS = {"total_loss", "mean_loss"}


def choose_cluster(criterion: str, stats: ClusterStats, threshold: int = 0) -> int | None:
    """The cluster to split, or None if none is splittable (two members, > 2·threshold interactions)."""
    score = CRITERIA[criterion](stats)
    splittable = (entities(stats) >= 2) & (interactions(stats) > 2 * threshold)
    if not splittable.any():
        return None
    score = torch.where(splittable, score, torch.tensor(float("-inf"), dtype=score.dtype))
    return int(score.argmax())
