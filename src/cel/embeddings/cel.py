"""Clustered Embedding Learning (CEL).

Chen, Huzhang, et al. "Clustered Embedding Learning for Recommender Systems", TheWebConf 2023,
Section 3 and Appendices A.1, A.3, A.4, D.2, D.3.

The embedding table is B = S_q · B_q (Eq. 2) with a hard assignment S_q, stored as the index
vector ``assign`` (M,), and cluster embeddings B_q (K, R). B_q is preallocated with the budget
M_q rows (unused rows are zero and never indexed) so that splits keep optimiser state aligned.
The schedule that splits and reassigns (t1, t2) lives in :mod:`cel.train.schedule`; this class
holds the state and the primitive operations, all under ``torch.no_grad()``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


@dataclass(frozen=True)
class CELParams(MethodParams):
    t1: int = 40                    # steps between reassignments (Section 3.2; Table 10)
    t2: int = 10                    # steps between splits
    m0: int = 1                     # initial number of clusters M_0 (A.1); 0 = the budget (no split)
    split: bool = True              # Table 8 ablation: False = M_0 = budget, reassignment only
    split_method: str = "gpca"      # gpca | random_projection | random | bisect_gradient | bisect_user
    criterion: str = "interactions"  # grad_norm | total_loss | mean_loss | entities | interactions
    delta: str = "zero"             # zero | median | balanced (A.3.3, Table 9)
    normalize: str = "center"       # pre-PCA normalisation of G: center | standardize | none
    reassign: bool = True
    reassign_until: int = 0         # no reassignment after this step (0 = never stop)
    grad_avg: bool = True           # gradient averaging, Eq. (7)
    init: str = "random"            # random | genre | avg_rating (rule-based, Table 5)
    cluster_after_init: bool = True  # Table 5: False = keep the rule-based clustering fixed
    target_compression: float = 0.0  # cluster budget in % if != run compression (personalisation)
    personalize_at: int = 0         # step at which to untie (Section 4.2.1); 0 = never
    lambda_p: float = 50.0          # distance regulariser of personalisation
    warm_only: int = 0              # personalise only entities with > warm_only interactions
    frozen_assignments: str = ""    # retrain with this clustering fixed (Table 11): parquet path
    frozen_from: str = ""           # ... or the clustering learned by this method's run of the same key
    chunk_elems: int = 1 << 22      # memory bound of the reassignment GEMM chunks
    split_threshold: int = 100      # d (A.1): a cluster splits only with more than 2d training interactions; 0 = none
    init_centroids: str = "abs_mean"  # D.1: abs_mean = |full table| first, then member means; mean = signed means
    entities: str = "item"          # which side is clustered: item | user | both

    def __post_init__(self):
        super().__post_init__()
        from cel.cluster.criteria import CRITERIA
        from cel.cluster.split import SPLITTERS
        from cel.errors import ConfigError

        checks = {"split_method": (self.split_method, SPLITTERS), "criterion": (self.criterion, CRITERIA),
                  "delta": (self.delta, ("zero", "median", "balanced")),
                  "normalize": (self.normalize, ("center", "standardize", "none")),
                  "init": (self.init, ("random", "genre", "avg_rating")),
                  "init_centroids": (self.init_centroids, ("abs_mean", "mean")),
                  "entities": (self.entities, ("item", "user", "both"))}
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ConfigError(f"config invalid value at 'methods.cel.{key}': {value!r} "
                                  f"(allowed: {', '.join(allowed)})")
        if self.t1 < 1 or self.t2 < 1:
            raise ConfigError("config invalid value at 'methods.cel.t1/t2': must be >= 1")
        if self.split_threshold < 0:
            raise ConfigError("config invalid value at 'methods.cel.split_threshold': must be >= 0")


class CELEmbedding(EmbeddingMethod):
    Params = CELParams

    def __init__(self, num_entities, dim, compression, params: CELParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        budget = params.target_compression or compression
        self.max_clusters = max(1, min(num_entities, int(round(budget / 100.0 * num_entities))))
        m0 = self.max_clusters if (not params.split or params.m0 == 0) else min(params.m0, self.max_clusters)
        # D.1: initialise the full table, take its absolute value (NMF's nonnegativity), assign
        # entities at random, centroids = cluster means. Signed means (``init_centroids: mean``)
        # start near 0: initial predictions ~0.05 against ~2 for the full model on ML-100k.
        full = init_vectors(num_entities, dim, generator, params.init_scale)                       # (M, R)
        if params.init_centroids == "abs_mean":
            full = full.abs()
        assign = torch.cat([torch.arange(m0), torch.randint(m0, (num_entities - m0,), generator=generator)])
        assign = assign[torch.randperm(num_entities, generator=generator)]
        self.register_buffer("assign", assign)                                   # (M,) S_q as indices
        self.centroids = nn.Parameter(torch.zeros(self.max_clusters, dim))       # (K_max, R) B_q
        self.n_clusters = m0
        self._set_centroids_to_means(full)
        self.personal: nn.Parameter | None = None                               # (M, R) after untying
        self.register_buffer("personal_mask", torch.zeros(num_entities, dtype=torch.bool))

    # -- the embedding -------------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        shared = self.centroids[self.assign[ids]]
        if self.personal is None:
            return shared
        mask = self.personal_mask[ids].unsqueeze(-1)
        return torch.where(mask, self.personal[ids], shared)

    def embedding_rows(self) -> int:
        """K cluster embeddings, plus the personalised rows once untied."""
        extra = int(self.personal_mask.sum()) if self.personal is not None else 0
        return self.n_clusters + extra

    def index_entries(self) -> int:
        """The M assignment indices."""
        return self.num_entities

    def penalty(self) -> torch.Tensor | None:
        """Personalisation regulariser L_p = λ_p/2 Σ_j ||B(j,:) - S_q(j,:) B_q||² (Section 4.2.1)."""
        if self.personal is None:
            return None
        own, shared = self.untied_rows()
        return 0.5 * self.params.lambda_p * (own - shared).pow(2).sum()

    def untied_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, R) the untied entities' own rows B(j,:) and (U, R) their clusters' rows S_q(j,:) B_q."""
        m = self.personal_mask
        return self.personal[m], self.centroids[self.assign[m]]

    def shared_rows(self):
        """(B_q, assignment) for gradient averaging, Eq. (7), when ``grad_avg`` is on."""
        return (self.centroids, self.assign) if self.params.grad_avg else None

    def cluster_sizes(self) -> torch.Tensor:
        return torch.bincount(self.assign, minlength=self.n_clusters)[: self.n_clusters]

    def assignments(self) -> torch.Tensor:
        return self.assign.clone()

    # -- cluster operations (no grad) ------------------------------------------------------
    @torch.no_grad()
    def _set_centroids_to_means(self, full: torch.Tensor) -> None:
        sums = torch.zeros(self.max_clusters, self.dim).index_add_(0, self.assign, full)
        sizes = torch.bincount(self.assign, minlength=self.max_clusters).clamp_min(1)
        self.centroids.data.copy_(sums / sizes[:, None])

    @torch.no_grad()
    def set_assignments(self, assign: torch.Tensor, full: torch.Tensor | None = None) -> None:
        """Replace the clustering (rule-based init, frozen retraining); centroids = member means
        of ``full`` (or of the current table)."""
        full = self.forward(torch.arange(self.num_entities)).detach() if full is None else full
        uniq, assign = torch.unique(assign, return_inverse=True)
        if len(uniq) > self.max_clusters:
            raise ValueError(f"{len(uniq)} clusters exceed the budget of {self.max_clusters}")
        self.assign.copy_(assign)
        self.n_clusters = len(uniq)
        self._set_centroids_to_means(full)
        self.centroids.data[self.n_clusters:] = 0

    @torch.no_grad()
    def split(self, cluster: int, to_new: torch.Tensor) -> int:
        """Move the members of ``cluster`` where ``to_new`` is True into a new cluster whose
        embedding is a copy of the parent's (predictions are unchanged at this moment)."""
        if self.n_clusters >= self.max_clusters:
            raise RuntimeError("cluster budget reached")
        members = torch.nonzero(self.assign == cluster).squeeze(1)
        if len(members) != len(to_new):
            raise ValueError("mask does not match the cluster's members")
        new = self.n_clusters
        self.centroids.data[new] = self.centroids.data[cluster]
        self.assign[members[to_new]] = new
        self.n_clusters += 1
        return new

    @torch.no_grad()
    def reassign(self, new_assign: torch.Tensor) -> tuple[int, torch.Tensor]:
        """Apply a reassignment, then drop empty clusters (S_q keeps full column rank, Thm. 1).

        Returns (entities moved, old->new cluster index map with -1 for dropped clusters).
        """
        moved = int((new_assign != self.assign).sum())
        self.assign.copy_(new_assign)
        sizes = torch.bincount(self.assign, minlength=self.n_clusters)
        keep = torch.nonzero(sizes > 0).squeeze(1)
        mapping = torch.full((self.max_clusters,), -1, dtype=torch.long)
        mapping[keep] = torch.arange(len(keep))
        if len(keep) < self.n_clusters:
            self.centroids.data[: len(keep)] = self.centroids.data[keep].clone()
            self.centroids.data[len(keep):] = 0
            self.assign.copy_(mapping[self.assign])
            self.n_clusters = len(keep)
        return moved, mapping

    @torch.no_grad()
    def personalize(self, mask: torch.Tensor) -> nn.Parameter:
        """Untie the entities in ``mask``: each gets its own row, initialised to its cluster's."""
        self.personal = nn.Parameter(self.centroids.data[self.assign].clone())
        self.personal_mask.copy_(mask)
        return self.personal
