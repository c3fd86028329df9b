"""CEL-Lite: Clustered Embedding Learning for online updates.

Chen, Huzhang, et al. "Clustered Embedding Learning for Recommender Systems", TheWebConf 2023,
Section 3.4 and Appendices A.1, C.2, D.1, D.2.

The embedding is CEL's B = S_q · B_q (Eq. 2), so this class *is* a :class:`CELEmbedding` (same
``assign``/``centroids``/personalisation contract, the same hooks for the trainer and the run
driver), with what an online learner needs on top:

* **No vocabulary.** Entities are admitted on arrival: the training ``forward`` admits every id
  it has not seen before (``admit``), growing the assignment by doubling its capacity. An id that
  was never admitted (at test time, or before it arrives) reads cluster 0. ``num_entities`` is
  the span of ids stored so far (the data set's M when it is known up front).
* **Entry rule.** A newcomer joins one of the M_0 initial clusters, uniformly at random (A.1:
  "the users/items are mapped randomly into M_0 initial clusters"); with the default M_0 = 1 that
  is cluster 0, which also serves unseen ids. The reassignment at the end of the same step then
  scores it against m random candidates. The initial clusters are never freed.
* **Cap.** M_q is ``max_clusters`` when set; else ``target_compression`` (or the run's
  compression) × M when M is known at construction; else that share of the entities admitted so
  far. The cluster table is preallocated at a vocabulary's cap (as in CEL); on a stream it grows
  by doubling with the clusters made (the trainer's dense per-step work on it then follows M_q).
* **O(batch) bookkeeping.** ``sizes`` (K,) members per cluster (the divisor of Eq. 7, counted
  over every entity admitted so far, D.2), ``interactions`` (K,) ||W S_q(:, k)||_0 (the split
  criterion, Section 3.4.4), and the members of each cluster
  (:class:`~cel.cluster.members.ClusterMembers`) are kept up to date by ``move`` and
  ``split_off`` without any O(M) scan. A cluster that loses its last member is freed and its row
  is reused by the next split (no renumbering of the assignment, which would be O(M)).

The schedule (reassignment of the batch's entities, Strategies 1 and 2) is
:class:`cel.train.lite_schedule.LiteSchedule`. Under the offline
:class:`~cel.train.schedule.ClusterSchedule` CEL's whole-table operations (``split`` with a mask
over ``nonzero(assign == k)``, ``reassign`` of every entity with renumbering) still work, and the
full-batch forward admits every entity at the first step: the method then behaves as offline CEL
(this is how the run driver uses it until it picks ``LiteSchedule`` and the ``replay`` feed).

Shapes: C capacity (entities), M = ``num_entities``, K rows of B_q (<= the cap), R dimension.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import torch
from torch import nn

from cel.cluster.growth import doubled, grown
from cel.cluster.members import ClusterMembers
from cel.embeddings.base import EmbeddingMethod, init_vectors
from cel.embeddings.cel import CELEmbedding, CELParams
from cel.errors import ConfigError

#: CELParams fields CEL-Lite does not read, with the only value it accepts
_FIXED = {"t2": 10, "split_method": "gpca", "criterion": "interactions", "init": "random",
          "cluster_after_init": True, "frozen_assignments": "", "frozen_from": ""}


@dataclass(frozen=True)
class CELLiteParams(CELParams):
    """CEL's parameters (personalisation ``target_compression``/``personalize_at``/``lambda_p``/
    ``warm_only``, ``m0``, ``split``, ``reassign``, ``grad_avg``, ``normalize``, ``entities``,
    ``init_scale``) plus CEL-Lite's own. ``split_threshold`` is d (A.1: 100). CEL-Lite reassigns
    and splits every ``t1`` batches (the paper's t1 = 1); the splits use GPCA with the
    interaction-count criterion (A.1's priority queue); ``delta`` is the preferred threshold of
    Eq. 6 (``zero``, ``median`` or ``balanced``), which Strategy 2 tunes until the halves differ
    by at most d."""

    t1: int = 1                # (the replay buffer's n is the feed's: tasks.*.feed.buffer)
    m: int = 10                # random candidate clusters per reassignment (Section 3.4.3)
    max_clusters: int = 0      # absolute cap M_q (0: compression × M, or × entities seen on a stream)

    def __post_init__(self):
        super().__post_init__()
        for key, value in _FIXED.items():
            if getattr(self, key) != value:
                raise ConfigError(f"config invalid value at 'methods.cel_lite.{key}': {getattr(self, key)!r} "
                                  f"(CEL-Lite uses {value!r})")
        if self.m < 1:
            raise ConfigError("config invalid value at 'methods.cel_lite.m': must be >= 1")
        if self.max_clusters < 0:
            raise ConfigError("config invalid value at 'methods.cel_lite.max_clusters': must be >= 0")

    @property
    def d(self) -> int:
        """The split threshold d of Strategies 1 and 2."""
        return self.split_threshold


class CELLiteEmbedding(CELEmbedding):
    Params = CELLiteParams

    def __init__(self, num_entities, dim, compression, params: CELLiteParams, generator):
        # CEL's constructor initialises a table of M known entities; CEL-Lite starts empty.
        EmbeddingMethod.__init__(self, num_entities, dim, compression, params, generator)
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        self.share = (params.target_compression or compression) / 100.0
        if params.max_clusters:
            self.cap_rule = "absolute"
            cap = params.max_clusters
        elif num_entities:
            self.cap_rule = "vocabulary"
            cap = max(1, min(num_entities, int(round(self.share * num_entities))))
        else:
            self.cap_rule = "seen"
            cap = 1
        self._cap = cap
        m0 = cap if (not params.split or params.m0 == 0) else min(params.m0, cap)
        self.m0 = m0
        # rows of B_q: the cap when it comes from a known vocabulary (as CEL); on a stream the table
        # grows by doubling with the clusters actually made, so the trainer's dense per-step work
        # on the table (update, constraint, Eq. 8) follows M_q, not the cap
        rows = cap if self.cap_rule == "vocabulary" else max(m0, min(cap, 16) if self.cap_rule == "absolute" else 16)
        # D.1 draws each vector as Gaussian / max |.|; the M_0 clusters have no members yet to
        # average, so their embeddings are drawn that way (abs for NMF's nonnegativity).
        init = init_vectors(m0, dim, generator, params.init_scale)
        if params.init_centroids == "abs_mean":
            init = init.abs()
        self.centroids = nn.Parameter(torch.cat([init, torch.zeros(rows - m0, dim)]))      # (K, R) B_q
        self.personal: nn.Parameter | None = None                                          # (C, R) after untying
        C = max(1, num_entities)
        self.register_buffer("_assign", torch.zeros(C, dtype=torch.int64))                 # (C,) S_q as indices
        self.register_buffer("_personal_mask", torch.zeros(C, dtype=torch.bool))
        self.register_buffer("admitted", torch.zeros(C, dtype=torch.bool))                 # (C,) arrived
        self.register_buffer("sizes", torch.zeros(rows, dtype=torch.int64))                # (K,) members
        self.register_buffer("interactions", torch.zeros(rows, dtype=torch.int64))         # (K,) ||W S_q(:,k)||_0
        self.register_buffer("live", torch.zeros(rows, dtype=torch.bool))                  # (K,) row in use
        self.live[:m0] = True
        self.n_clusters = m0
        self.high = m0                           # rows [0, high) have been used
        self.free: list[int] = []                # heap of freed rows below ``high``, reused first
        self.n_admitted = 0
        self.index = ClusterMembers(rows, C)

    # -- storage views -----------------------------------------------------------------------
    @property
    def assign(self) -> torch.Tensor:
        """(M,) cluster of every stored id (a view of the (C,) capacity)."""
        return self._assign[: self.num_entities]

    @property
    def personal_mask(self) -> torch.Tensor:
        return self._personal_mask[: self.num_entities]

    @property
    def capacity(self) -> int:
        return self._assign.shape[0]

    @property
    def max_clusters(self) -> int:
        """The cap M_q (for the ``seen`` rule: the share of the entities admitted so far)."""
        if self.cap_rule == "seen":
            return max(1, self.m0, int(round(self.share * self.n_admitted)))
        return self._cap

    # -- the embedding -----------------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., R): B_q[S_q(id)] (or the untied row). The training forward admits new ids first."""
        if self.training and ids.numel():
            self.admit(ids)                                  # every id is now inside the capacity
            idc, inside = ids, None
            k = self._assign[ids]
        else:
            inside = ids < self.capacity
            idc = ids.clamp(max=self.capacity - 1)
            k = torch.where(inside, self._assign[idc], 0)
        shared = self.centroids[k]
        if self.personal is None:
            return shared
        mask = self._personal_mask[idc] if inside is None else inside & self._personal_mask[idc]
        return torch.where(mask.unsqueeze(-1), self.personal[idc], shared)

    def untied_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows over the capacity-sized tables (CEL's penalty reads them)."""
        m = self._personal_mask
        return self.personal[m], self.centroids[self._assign[m]]

    def row_usage(self):
        """([B_q], members per row): Eq. 7's divisor, counted over every entity admitted so far."""
        return ([self.centroids], self.sizes) if self.params.grad_avg else None

    def cluster_sizes(self) -> torch.Tensor:
        """(n_clusters,) members of every live cluster, in row order."""
        return self.sizes[self.live]

    def live_clusters(self) -> torch.Tensor:
        return torch.nonzero(self.live).squeeze(1)

    # -- admission ---------------------------------------------------------------------------
    def _grow_entities(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        C = doubled(self.capacity, needed)
        self._assign = grown(self._assign, C)
        self._personal_mask = grown(self._personal_mask, C, False)
        self.admitted = grown(self.admitted, C, False)
        self.index.grow_entities(C)
        if self.personal is not None:
            self.personal.data = grown(self.personal.data, C)

    def _grow_clusters(self, needed: int) -> None:
        K = self.centroids.shape[0]
        if needed <= K:
            return
        K = doubled(K, needed)
        if self.cap_rule == "absolute":
            K = max(needed, min(K, self._cap))
        self.centroids.data = grown(self.centroids.data, K)
        self.sizes, self.interactions = grown(self.sizes, K), grown(self.interactions, K)
        self.live = grown(self.live, K, False)
        self.index.grow_clusters(K)

    @torch.no_grad()
    def admit(self, ids: torch.Tensor) -> torch.Tensor:
        """Admit the ids not seen before (entry rule: a random one of the M_0 initial clusters).
        Returns the newly admitted ids (sorted)."""
        ids = ids.reshape(-1)
        top = int(ids.max()) + 1
        if top > self.capacity:
            self._grow_entities(top)
        self.num_entities = max(self.num_entities, top)
        new = ids[~self.admitted[ids]]
        if len(new) == 0:
            return new
        new = torch.unique(new)
        entry = (torch.zeros(len(new), dtype=torch.int64) if self.m0 == 1
                 else torch.randint(self.m0, (len(new),), generator=self.generator))
        self.admitted[new] = True
        self.n_admitted += len(new)
        self._assign[new] = entry
        self.sizes.index_add_(0, entry, torch.ones_like(entry))
        self.index.place(new, entry)
        if self.personal is not None:
            self.personal.data[new] = self.centroids.data[entry]
            self._personal_mask[new] = True
        return new

    # -- CEL-Lite cluster operations (O(batch), no O(M) scan) -----------------------------------
    def members(self, k: int) -> torch.Tensor:
        """The admitted members of cluster k, O(its size)."""
        return self.index.members(k)

    @torch.no_grad()
    def count_interactions(self, entities: torch.Tensor) -> None:
        """Add one interaction to the cluster of each of ``entities`` (B,) (repeats count)."""
        k = self._assign[entities]
        self.interactions.index_add_(0, k, torch.ones_like(k))

    @torch.no_grad()
    def move(self, entities: torch.Tensor, targets: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Reassign admitted ``entities`` (E,) (unique) to live clusters ``targets``; ``counts``
        (E,) their interactions. Clusters left empty are freed (except the initial ones).
        Returns the clusters freed."""
        src = self._assign[entities]
        moving = src != targets
        entities, targets, src, counts = entities[moving], targets[moving], src[moving], counts[moving]
        if len(entities) == 0:
            return src
        one = torch.ones_like(src)
        self.sizes.index_add_(0, src, -one).index_add_(0, targets, one)
        self.interactions.index_add_(0, src, -counts).index_add_(0, targets, counts)
        self._assign[entities] = targets
        self.index.place(entities, targets)
        emptied = torch.unique(src[self.sizes[src] == 0])
        emptied = emptied[emptied >= self.m0]
        if len(emptied):
            self.live[emptied] = False
            self.interactions[emptied] = 0
            self.n_clusters -= len(emptied)
            for k in emptied.tolist():
                heapq.heappush(self.free, k)
        return emptied

    def _new_rows(self, count: int) -> torch.Tensor:
        """``count`` free rows of B_q: freed ones first (lowest first), then unused ones."""
        rows = [heapq.heappop(self.free) for _ in range(min(count, len(self.free)))]
        extra = count - len(rows)
        if extra:
            self._grow_clusters(self.high + extra)
            rows += range(self.high, self.high + extra)
            self.high += extra
        return torch.tensor(rows, dtype=torch.int64)

    @torch.no_grad()
    def split_off(self, cluster: int, movers: torch.Tensor, counts: torch.Tensor) -> int:
        """Move ``movers`` (members of ``cluster``) into a new cluster whose embedding is a copy of
        the parent's (Section 3.3: predictions are unchanged at this moment). Returns its row."""
        return int(self.split_off_each(torch.tensor([cluster]), [movers], [counts])[0])

    @torch.no_grad()
    def split_off_each(self, parents: torch.Tensor, movers: list[torch.Tensor] | torch.Tensor,
                       counts: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Several splits at once: ``movers[s]`` (or the single entity ``movers[s]`` when a
        tensor (S,) is given, Strategy 1) leaves ``parents[s]`` for a new row initialised to the
        parent's embedding. Returns the new rows (S,)."""
        S = len(parents)
        if self.n_clusters + S > self.max_clusters:
            raise RuntimeError("cluster cap reached")
        if torch.is_tensor(movers):
            sizes = torch.ones(S, dtype=torch.int64)
        else:
            sizes = torch.tensor([len(m) for m in movers], dtype=torch.int64)
            movers, counts = torch.cat(movers), torch.cat(counts)
        rows = self._new_rows(S)
        self.centroids.data[rows] = self.centroids.data[parents]
        self.live[rows] = True
        self.n_clusters += S
        self.move(movers, torch.repeat_interleave(rows, sizes), counts)
        return rows

    # -- CEL's whole-table operations (offline ClusterSchedule) ----------------------------------
    def split(self, cluster: int, to_new: torch.Tensor) -> int:
        """CEL's ``split``: ``to_new`` is a mask over ``torch.nonzero(assign == cluster)``."""
        members = torch.nonzero(self.assign == cluster).squeeze(1)
        if len(members) != len(to_new):
            raise ValueError("mask does not match the cluster's members")
        return self.split_off(cluster, members[to_new], torch.zeros(int(to_new.sum()), dtype=torch.int64))

    @torch.no_grad()
    def reassign(self, new_assign: torch.Tensor) -> tuple[int, torch.Tensor]:
        """CEL's whole-table reassignment (Eq. 4 applied to every entity), then CEL's renumbering
        of the rows so that the live clusters are 0..n_clusters-1 (O(M), as in offline CEL).
        Returns (entities moved, old row -> new row, -1 for dropped rows)."""
        changed = torch.nonzero(new_assign != self.assign).squeeze(1)
        self.move(changed, new_assign[changed], torch.zeros(len(changed), dtype=torch.int64))
        keep = self.live_clusters()
        mapping = torch.full((len(self.live),), -1, dtype=torch.int64)
        mapping[keep] = torch.arange(len(keep))
        if len(keep) < self.high:
            L = len(keep)
            self.centroids.data[:L] = self.centroids.data[keep].clone()
            self.centroids.data[L:] = 0
            for buf in (self.sizes, self.interactions, self.live):
                buf[:L] = buf[keep].clone()
                buf[L:] = 0
            self._assign.copy_(mapping[self._assign].clamp_min(0))
            self.high, self.free = L, []
            self.index = ClusterMembers(len(self.live), self.capacity)
            ids = torch.nonzero(self.admitted).squeeze(1)
            self.index.place(ids, self._assign[ids])
        return len(changed), mapping

    def set_assignments(self, assign: torch.Tensor, full: torch.Tensor | None = None) -> None:
        raise NotImplementedError("CEL-Lite builds its clustering online (no rule-based or frozen clustering)")

    @torch.no_grad()
    def personalize(self, mask: torch.Tensor) -> nn.Parameter:
        """Untie the stored entities in ``mask`` (M,): each gets its own row, initialised to its
        cluster's; entities admitted later are untied on arrival."""
        self.personal = nn.Parameter(self.centroids.data[self._assign].clone())             # (C, R)
        self._personal_mask.zero_()
        self._personal_mask[: len(mask)] = mask
        return self.personal

    # -- memory ------------------------------------------------------------------------------
    def nbytes(self) -> dict[str, int]:
        """Bytes held: cluster embeddings (and untied rows), assignments (with their capacity),
        and the cluster bookkeeping (sizes, counts, member lists)."""
        def b(*ts):
            return sum(t.numel() * t.element_size() for t in ts)
        return {"cluster_embeddings": b(self.centroids) + (b(self.personal) if self.personal is not None else 0),
                "assignments": b(self._assign, self._personal_mask, self.admitted),
                "cluster_index": b(self.sizes, self.interactions, self.live) + self.index.nbytes()}


__all__ = ["CELLiteEmbedding", "CELLiteParams"]
