"""eTree: tree-structured embeddings baseline.

Almutairi, Wang, Wang, Zhao, Sidiropoulos. "eTREE: Learning Tree-structured Embeddings",
AAAI 2021, 35(8), 6609-6617 (the CEL paper's [1]).

Mechanism: NMF whose item factors follow a tree, each node's embedding regularised toward its
parent's, tree and embeddings learned jointly. The CEL paper's configuration (D.1): depth 3, a
root, M_q parent nodes, items as leaves:

    L_tree = λ/2 · Σ_j ||B(j,:) - C(s_j,:)||²  +  λ_root/2 · Σ_k ||C(k,:) - c_0||²

Block updates (exact minimisers, given the other blocks): leaves to their nearest parent; parent
k = (λ Σ_{j in k} B(j,:) + λ_root c_0) / (λ n_k + λ_root); the root c_0 = the mean of the
parents. Parents and root are coupled, so they are alternated ``root_iters`` times. The root term
shrinks the parents of small clusters toward the root (an empty parent becomes the root), which
is what a depth-3 tree adds over flat K-means (JNKM). At test time items share their parent's
embedding below 100% (CEL Section 4); everything else is in
:mod:`cel.embeddings.cluster_regularized`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cel.embeddings.cluster_regularized import ClusterRegularizedEmbedding, ClusterRegularizedParams


@dataclass(frozen=True)
class ETreeParams(ClusterRegularizedParams):
    lam_root: float | None = None   # λ_root of the parent -> root penalty; None = lam (one knob to tune)
    root_iters: int = 3         # parent/root alternations per update


class ETreeEmbedding(ClusterRegularizedEmbedding):
    Params = ETreeParams

    @property
    def root(self) -> torch.Tensor:
        """(R,) the root node c_0 (the mean of the parents)."""
        return self.parents.mean(0)

    @torch.no_grad()
    def update_parents(self) -> None:
        lam = self.params.lam
        lam_root = lam if self.params.lam_root is None else self.params.lam_root
        sums, n = self.member_sums()
        root = sums.sum(0) / n.sum().clamp_min(1)            # first guess: the mean of all leaves
        for _ in range(self.params.root_iters):
            self.parents.copy_((lam * sums + lam_root * root) / (lam * n + lam_root).clamp_min(1e-12)[:, None])
            root = self.parents.mean(0)
