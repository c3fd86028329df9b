"""Full embedding regularised toward a learned clustering, shared at test time.

The common core of the two "predefined clustering structure" baselines of the CEL paper,
eTree (:mod:`cel.embeddings.etree`) and JNKM (:mod:`cel.embeddings.jnkm`); each of those files
opens with its own reference and sets only what differs (eTree's root level).

Training (both originals): every entity keeps its own leaf row B(j,:) (full size), fitted to the
data under a structure penalty that pulls it toward its parent:

    L_struct = λ/2 · Σ_j ||B(j,:) - C(s_j,:)||²                       s_j: hard assignment (M,)

with K parent rows C (K = M_q). The structure is fitted by exact block minimisation, alternated
with the gradient steps on B (the K-means-like alternation of JNKM; eTree's tree updates):
every ``update_every`` steps, ``lloyd_iters`` times, (1) assign each leaf to its nearest parent
(the argmin of L_struct over s), (2) set the parents to their closed form (the member mean for
JNKM; eTree adds its root term, see there). The parents are buffers, not gradient parameters.

Initialisation (CEL Appendix D.1): leaves by ``init_vectors``; a random assignment in which every
parent has a member; parents = the centres of their members (computed at fit start, after the
interaction model's constraint, so that NMF parents are nonnegative like the leaves).

Test time (CEL Section 4, "we adapt eTree such that in the test phase, leaf nodes will share the
embedding of their parent nodes"; D.1 "we only keep the second layer nodes' embeddings"): at a
compression below 100% an entity's embedding is its parent's row, and the stored model is the K
parent rows plus the M assignment indices. At 100% the method is the original (no sharing): the
leaves are the embeddings and the clustering is only a regulariser, with K = ``full_clusters``
percent of M parent nodes (the paper does not give K for its 100% column).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


@dataclass(frozen=True)
class ClusterRegularizedParams(MethodParams):
    lam: float = 1.0            # λ of the leaf -> parent penalty
    update_every: int = 10      # steps between block updates of assignment and parents
    lloyd_iters: int = 1        # assignment/parent alternations per update
    full_clusters: float = 1.0  # parents in % of M at compression 100 (regulariser only)

    def __post_init__(self):
        super().__post_init__()
        if self.lam < 0 or self.update_every < 1 or self.lloyd_iters < 1 or not 0 < self.full_clusters <= 100:
            raise ConfigError("config invalid value at 'method': lam >= 0, update_every >= 1, "
                              "lloyd_iters >= 1 and 0 < full_clusters <= 100 are required")


class ClusterRegularizedEmbedding(EmbeddingMethod):
    """Leaves (M, R) trained by gradient descent; parents (K, R) and assignment (M,) by block
    updates; ``forward`` gives the leaves while training, the parents at test time (< 100%)."""

    Params: ClassVar[type[MethodParams]] = ClusterRegularizedParams

    def __init__(self, num_entities, dim, compression, params: ClusterRegularizedParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        self.shares_at_test = compression < 100
        k = self.budget_rows() if self.shares_at_test else int(round(params.full_clusters / 100 * num_entities))
        self.n_parents = max(1, min(k, num_entities))
        self.weight = nn.Parameter(init_vectors(num_entities, dim, generator, params.init_scale))   # (M, R) leaves
        k = self.n_parents
        assign = torch.cat([torch.arange(k), torch.randint(k, (num_entities - k,), generator=generator)])
        self.register_buffer("assign", assign[torch.randperm(num_entities, generator=generator)])  # (M,)
        self.register_buffer("parents", torch.zeros(k, dim))                                         # (K, R)
        self.update_parents()

    # -- the embedding -------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.training or not self.shares_at_test:
            return self.weight[ids]
        return self.parents[self.assign[ids]]

    def table(self) -> torch.Tensor:
        return self.weight if (self.training or not self.shares_at_test) else self.parents[self.assign]

    def embedding_rows(self) -> int:
        return self.n_parents if self.shares_at_test else self.num_entities

    def index_entries(self) -> int:
        return self.num_entities if self.shares_at_test else 0

    def penalty(self) -> torch.Tensor | None:
        lam = self.params.lam
        if lam == 0:
            return None
        return 0.5 * lam * (self.weight - self.parents[self.assign]).pow(2).sum()

    def cluster_sizes(self) -> torch.Tensor:
        return torch.bincount(self.assign, minlength=self.n_parents)

    # -- the structure (no grad) -----------------------------------------------------------------
    def member_sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """((K, R) sum of the member leaves, (K,) member counts) of the current assignment."""
        leaves = self.weight.detach()
        sums = torch.zeros(self.n_parents, self.dim, dtype=leaves.dtype).index_add_(0, self.assign, leaves)
        return sums, self.cluster_sizes().to(leaves.dtype)

    @torch.no_grad()
    def update_parents(self) -> None:
        """Closed-form parents for the current assignment (JNKM: member means; an empty
        cluster keeps its row). Subclasses with more levels override this."""
        sums, n = self.member_sums()
        filled = n > 0
        self.parents[filled] = sums[filled] / n[filled, None]

    @torch.no_grad()
    def update_assignment(self) -> int:
        """Each leaf to its nearest parent (argmin of L_struct over s); returns entities moved."""
        leaves = self.weight.detach()
        d = (leaves.pow(2).sum(1, keepdim=True) - 2 * leaves @ self.parents.T
             + self.parents.pow(2).sum(1)[None, :])                                     # (M, K)
        new = d.argmin(dim=1)
        moved = int((new != self.assign).sum())
        self.assign.copy_(new)
        return moved

    def selectable(self) -> bool:
        return True

    @torch.no_grad()
    def on_step(self, step: int) -> None:
        """StepAware hook: parents from the (constrained) leaves at fit start, block updates
        every ``update_every`` steps."""
        if step == 0:
            self.update_parents()
            return
        if step % self.params.update_every == 0:
            for _ in range(self.params.lloyd_iters):
                self.update_assignment()
                self.update_parents()
