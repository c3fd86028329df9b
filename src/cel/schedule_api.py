"""Public cluster schedule for your own training loop: ``schedule.step(model, batch)``.

Chen, Huzhang, et al. "Clustered Embedding Learning for Recommender Systems", TheWebConf 2023,
Sections 3.2-3.4, Appendices A.1, D.2. The schedule learns the clustering of a
:class:`cel.CELEmbedding` / :class:`cel.CELLiteEmbedding` that sits anywhere inside any
differentiable model. It never looks inside the model: it evaluates ``loss_fn(model, batch)``
with some entities' embeddings substituted (candidate clusters, free rows for gradients).

* Gradient averaging (Eq. 7): a hook divides each cluster row's gradient by its number of
  members, so rows of every size learn at a similar pace (``grad_avg``).
* :class:`cel.CELEmbedding` (offline CEL, Section 3.2): every ``t2`` steps, while K < M_q, the
  cluster with the most interactions (and > 2d of them) splits in two along the first principal
  component of its members' gradients g_j = -∂L/∂B(j,:) (Eq. 5-6); every ``t1`` steps every
  entity seen so far moves to the cluster of lowest loss on its interactions (Eq. 4:
  argmin_k Σ_{d∈D_j} ℓ(y_d(B_q[k]), x_d)), and empty clusters are dropped.
* :class:`cel.CELLiteEmbedding` (Section 3.4): every ``t1`` steps (default: every batch) the
  batch's entities are scored under their cluster and ``m`` random ones and move to the best;
  splits follow Strategies 1-2 (Section 3.4.4). O(batch) work per step.

Where the interactions come from: give ``interactions_of(entity) -> batch`` (all training
interactions of one entity, as a batch of your loader's structure), or let the schedule keep
CEL-Lite-style replay buffers: the last ``buffer_size`` examples of every entity, taken from the
batches passed to ``step``. Batches are tensors or (nested) tuples/lists/dicts of tensors whose
first dimension is the example.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Sequence

import torch

from cel.api import CELEmbedding, CELLiteEmbedding
from cel.cluster.criteria import ClusterStats, choose_cluster
from cel.cluster.lite_split import LiteSplitter
from cel.cluster.reassign import reassign as _best_of
from cel.cluster.split import SplitContext, split_mask
from cel.embeddings.cel import CELEmbedding as _CEL
from cel.embeddings.cel_lite import CELLiteEmbedding as _CELLite
from cel.train.schedule import ClusterSchedule as _TrainerSchedule

__all__ = ["ClusterSchedule"]

Batch = Any
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


# -- batches as flat lists of tensors ------------------------------------------------------------
def _leaves(batch: Batch) -> list[torch.Tensor]:
    if torch.is_tensor(batch):
        return [batch]
    if isinstance(batch, (tuple, list)):
        return [t for v in batch for t in _leaves(v)]
    if isinstance(batch, dict):
        return [t for k in batch for t in _leaves(batch[k])]
    raise TypeError(f"a batch must be a tensor or a (nested) tuple/list/dict of tensors, got {type(batch).__name__}")


def _rebuild(template: Batch, leaves: Sequence[torch.Tensor]) -> Batch:
    it = iter(leaves)

    def build(x):
        if torch.is_tensor(x):
            return next(it)
        if isinstance(x, (tuple, list)):
            return type(x)(build(v) for v in x)
        return {k: build(v) for k, v in x.items()}

    return build(template)


class _Rows:
    """D interaction rows (a batch's leaves) and the entity each belongs to, ``owner`` (D,)."""

    def __init__(self, template: Batch, leaves: list[torch.Tensor], owner: torch.Tensor):
        self.template, self.leaves, self.owner = template, leaves, owner

    def chunks(self, size: int):
        for s in range(0, len(self.owner), size):
            yield _rebuild(self.template, [v[s:s + size] for v in self.leaves]), self.owner[s:s + size]


class _Buffers:
    """The last ``n`` examples of every entity (CEL-Lite's replay buffers, Section 3.4.2):
    per batch leaf a (C, n, ...) ring, C the entity capacity (doubled on demand)."""

    def __init__(self, n: int):
        self.n = n
        self.count = torch.zeros(0, dtype=torch.int64)    # (C,) examples seen per entity
        self.store: list[torch.Tensor] | None = None       # per leaf (C, n, *shape)
        self.template: Batch = None

    def _grow(self, need: int, leaves: list[torch.Tensor]) -> None:
        C = len(self.count)
        if self.store is None:
            self.store = [torch.zeros(0, self.n, *v.shape[1:], dtype=v.dtype) for v in leaves]
        if need <= C:
            return
        C2 = max(need, 2 * C, 16)
        self.count = torch.cat([self.count, torch.zeros(C2 - C, dtype=torch.int64)])
        self.store = [torch.cat([s, torch.zeros(C2 - C, *s.shape[1:], dtype=s.dtype)]) for s in self.store]

    @torch.no_grad()
    def add(self, batch: Batch, ids: torch.Tensor) -> None:
        leaves = [v.detach().cpu() for v in _leaves(batch)]
        B = len(ids)
        if any(v.dim() == 0 or len(v) != B for v in leaves):
            raise ValueError("every tensor of a batch needs the examples along its first dimension")
        if self.template is None:
            self.template = batch
        self._grow(int(ids.max()) + 1, leaves)
        order = torch.sort(ids, stable=True).indices
        sid = ids[order]
        uniq, per = torch.unique_consecutive(sid, return_counts=True)
        first = torch.cumsum(per, 0) - per
        rank = torch.arange(B) - torch.repeat_interleave(first, per)
        keep = rank >= torch.repeat_interleave(per, per) - self.n        # at most the last n per entity
        rows, ent, rank = order[keep], sid[keep], rank[keep]
        slot = (self.count[ent] + rank) % self.n
        for s, v in zip(self.store, leaves):
            s[ent, slot] = v[rows]
        self.count[uniq] += per

    def gather(self, entities: torch.Tensor) -> _Rows:
        k = self.count[entities.clamp(max=max(len(self.count) - 1, 0))].clamp(max=self.n)
        k = torch.where(entities < len(self.count), k, 0)
        owner, slot = torch.nonzero(torch.arange(self.n)[None, :] < k[:, None], as_tuple=True)
        ent = entities[owner]
        return _Rows(self.template, [s[ent, slot] for s in self.store], owner)


class _Provider:
    """Interactions from the user's ``interactions_of(entity) -> batch``."""

    def __init__(self, fn: Callable[[int], Batch]):
        self.fn = fn

    def gather(self, entities: torch.Tensor) -> _Rows:
        if len(entities) == 0:
            return _Rows(None, [], torch.zeros(0, dtype=torch.int64))
        batches = [self.fn(int(j)) for j in entities]
        parts = [_leaves(b) for b in batches]
        lens = torch.tensor([len(p[0]) for p in parts], dtype=torch.int64)
        leaves = [torch.cat(vs) for vs in zip(*parts)]
        return _Rows(batches[0], leaves, torch.repeat_interleave(torch.arange(len(entities)), lens))


class ClusterSchedule:
    """Learns the clusters of a CEL embedding inside your own training loop.

    Usage (after ``optimizer.step()`` of every training batch)::

        emb = cel.CELEmbedding(num_items, 32, num_clusters=84)      # in your model
        schedule = cel.ClusterSchedule(emb, loss_fn, entities=1, optimizer=opt)
        for batch in loader:
            loss = loss_fn(model, batch).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            schedule.step(model, batch)

    Args:
        embedding: the :class:`cel.CELEmbedding` or :class:`cel.CELLiteEmbedding` to cluster.
        loss_fn: ``loss_fn(model, batch) -> (B,)`` the per-example training loss (no reduction),
            e.g. ``lambda m, b: (m(b[0], b[1]) - b[2]) ** 2``.
        entities: where a batch holds each example's id of the clustered entity, (B,) long: a
            position (tuple/list batch), a key (dict batch) or ``fn(batch) -> (B,)``.
        interactions_of: optional ``fn(entity: int) -> batch`` of all that entity's training
            interactions; without it the schedule keeps replay buffers of ``buffer_size``.
        buffer_size: n, examples kept per entity (Section 3.4.2).
        optimizer: optional; its per-row state (Adam moments) follows splits and renumbering.
        grad_avg: gradient averaging, Eq. (7) (default: the embedding's ``grad_avg`` option).
        candidates: offline CEL only: score each entity under its cluster and this many random
            ones instead of all K clusters (None: all, the exact Eq. 4).
        chunk_rows: rows per model call when scoring (memory bound).

    The cadence and thresholds are the embedding's options (``t1``, ``t2``, ``split_threshold``,
    ``delta``, ``normalize``, and ``m`` for CEL-Lite). Attributes: ``steps``, ``splits``
    [(step, parent row, new row)], ``moves`` [(step, entities moved)].
    """

    def __init__(self, embedding: _CEL, loss_fn: LossFn, entities: int | str | Callable[[Batch], torch.Tensor], *,
                 interactions_of: Callable[[int], Batch] | None = None, buffer_size: int = 16,
                 optimizer: torch.optim.Optimizer | None = None, grad_avg: bool | None = None,
                 candidates: int | None = None, chunk_rows: int = 1 << 16, seed: int = 0):
        if not isinstance(embedding, (CELEmbedding, CELLiteEmbedding)):
            raise TypeError("ClusterSchedule needs a cel.CELEmbedding or cel.CELLiteEmbedding "
                            f"(got {type(embedding).__name__})")
        p = embedding.params
        if p.criterion not in ("interactions", "entities"):
            raise ValueError(f"criterion {p.criterion!r}: the user-loop schedule splits by 'interactions' or 'entities'")
        if p.split_method == "bisect_user":
            raise ValueError("split_method 'bisect_user' needs the other side's table: use the project's Trainer")
        self.emb, self.loss_fn, self.entities = embedding, loss_fn, entities
        self.lite = isinstance(embedding, _CELLite)
        self.source = _Provider(interactions_of) if interactions_of is not None else _Buffers(buffer_size)
        self.optimizers = [optimizer] if optimizer is not None else []
        self.candidates, self.chunk_rows = candidates, chunk_rows
        self.generator = torch.Generator().manual_seed(seed)
        self.seen = torch.zeros(max(1, embedding.num_entities), dtype=torch.int64)   # (M,) interactions seen
        self.steps = 0
        self.splits: list[tuple[int, int, int]] = []      # (step, parent row, new row)
        self.moves: list[tuple[int, int]] = []
        self.splitter = LiteSplitter(p.d, p.normalize, p.delta) if self.lite else None
        self._hook = None
        if p.grad_avg if grad_avg is None else grad_avg:
            self._hook = embedding.centroids.register_hook(self._average)

    # -- Eq. 7 ------------------------------------------------------------------------------------
    def _average(self, grad: torch.Tensor) -> torch.Tensor:
        """ΔB_q(k,:) ∝ ∂L/∂B_q(k,:) / ||S_q(:,k)||_0: the row's gradient over its member count."""
        e = self.emb
        sizes = e.sizes if self.lite else torch.bincount(e.assign, minlength=grad.shape[0])
        sizes = sizes[: grad.shape[0]].to(grad.dtype).clamp_min(1.0)
        if len(sizes) < grad.shape[0]:
            sizes = torch.cat([sizes, sizes.new_ones(grad.shape[0] - len(sizes))])
        return grad / sizes[:, None]

    # -- the step -----------------------------------------------------------------------------------
    def _ids(self, batch: Batch) -> torch.Tensor:
        if callable(self.entities):
            ids = self.entities(batch)
        else:
            ids = batch[self.entities]
        return torch.as_tensor(ids).reshape(-1).long().cpu()

    def step(self, model: torch.nn.Module, batch: Batch) -> None:
        """Record the batch's interactions, then run the cluster operations that are due.
        Call it after ``optimizer.step()``; ``model`` is the whole model (``loss_fn``'s input)."""
        ids = self._ids(batch)
        self.steps += 1
        if len(ids) == 0:
            return
        if int(ids.max()) >= len(self.seen):
            self.seen = torch.cat([self.seen, torch.zeros(2 * int(ids.max()) + 2 - len(self.seen), dtype=torch.int64)])
        self.seen.index_add_(0, ids, torch.ones_like(ids))
        if isinstance(self.source, _Buffers):
            self.source.add(batch, ids)
        e, p = self.emb, self.emb.params
        if self.lite:
            e.count_interactions(ids)
        if e.personal is not None:
            return
        was_training = model.training
        model.eval()
        try:
            if self.lite:
                self._lite_step(model, ids)
            else:
                if p.split and self.steps % p.t2 == 0 and e.n_clusters < e.max_clusters:
                    self.split_once(model)
                if p.reassign and self.steps % p.t1 == 0 and (not p.reassign_until or self.steps <= p.reassign_until):
                    self.reassign_all(model)
        finally:
            model.train(was_training)

    # -- scoring with substituted embeddings ------------------------------------------------------------
    def _losses(self, model, rows: _Rows, entities: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """(E,) summed loss of each entity's interactions with its embedding replaced by ``vectors`` (E, R)."""
        out = torch.zeros(len(entities), dtype=torch.float64)
        with torch.no_grad(), self.emb.substituted(entities, vectors):
            for batch, owner in rows.chunks(self.chunk_rows):
                out.index_add_(0, owner, self.loss_fn(model, batch).detach().reshape(-1).double().cpu())
        return out

    def candidate_losses(self, model, entities: torch.Tensor, cand: torch.Tensor, rows: _Rows | None = None) -> torch.Tensor:
        """(E, C) loss of entity ``entities[i]`` (E,) under cluster ``cand[i, c]`` (Eq. 4's L)."""
        rows = self.source.gather(entities) if rows is None else rows
        table = self.emb.centroids.detach()
        return torch.stack([self._losses(model, rows, entities, table[cand[:, c]]) for c in range(cand.shape[1])], 1)

    def gradients(self, model, entities: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        """(E, R) g_j = -∂L_j/∂B(j,:) of Eq. 5, each entity evaluated at its cluster's row B_q[clusters]."""
        rows = self.source.gather(entities)
        x = self.emb.centroids.detach()[clusters].clone().requires_grad_(True)
        grad = torch.zeros_like(x)
        with torch.enable_grad(), self.emb.substituted(entities, x):
            for batch, owner in rows.chunks(self.chunk_rows):
                loss = self.loss_fn(model, batch).sum()
                g, = torch.autograd.grad(loss, x, allow_unused=True)
                if g is not None:
                    grad += g
        return -grad

    # -- offline CEL (Section 3.2) ------------------------------------------------------------------------
    def counts(self) -> torch.Tensor:
        """(M,) interactions seen per entity."""
        M = self.emb.num_entities
        c = self.seen[:M]
        return torch.cat([c, c.new_zeros(M - len(c))]) if len(c) < M else c

    def split_once(self, model) -> int | None:
        """Split the chosen cluster along the first principal component of its members' gradients
        (Eq. 5-6); the new cluster starts as a copy of the parent. Returns its row, or None."""
        e, p = self.emb, self.emb.params
        counts = self.counts()
        k = choose_cluster(p.criterion, ClusterStats(e.assign, e.n_clusters, counts), p.split_threshold)
        if k is None:
            return None
        members = torch.nonzero(e.assign == k).squeeze(1)
        grads = self.gradients(model, members, torch.full_like(members, k)).float()
        mask = split_mask(p.split_method, SplitContext(grads, counts[members], e.generator, p.delta, p.normalize))
        new = e.split(k, mask)
        self.splits.append((self.steps, k, new))
        self._sync_rows(torch.tensor([k]), torch.tensor([new]))
        return new

    def reassign_all(self, model) -> int:
        """Eq. 4 for every entity seen so far (argmin over all clusters, or ``candidates`` random
        ones and its own); a tie keeps the current cluster; empty clusters are dropped."""
        e = self.emb
        entities = torch.nonzero(self.counts() > 0).squeeze(1)
        if len(entities) == 0 or e.n_clusters < 2:
            return 0
        live = e.live_clusters() if self.lite else torch.arange(e.n_clusters)
        cur = e.assign[entities]
        if self.candidates is None or self.candidates + 1 >= len(live):
            cand = live.expand(len(entities), -1)
        else:
            draw = live[torch.randint(len(live), (len(entities), self.candidates), generator=self.generator)]
            cand = torch.cat([cur[:, None], draw], 1)
        L = self.candidate_losses(model, entities, cand)
        col = (cand == cur[:, None]).float().argmax(1)                 # the current cluster's column
        best = cand.gather(1, _best_of(L, col, self.counts()[entities])[:, None])[:, 0]
        new_assign = e.assign.clone()
        new_assign[entities] = best
        moved, mapping = e.reassign(new_assign)
        keep = torch.nonzero(mapping >= 0).squeeze(1)
        if len(keep) < len(mapping):
            self._sync_rows(keep, mapping[keep], clear_from=len(keep))
        self.moves.append((self.steps, moved))
        return moved

    # -- CEL-Lite (Section 3.4) ---------------------------------------------------------------------------
    def _lite_step(self, model, ids: torch.Tensor) -> None:
        e, p = self.emb, self.emb.params
        if self.steps % p.t1:
            return
        entities = torch.unique(ids)
        touched = [e._assign[entities]]
        if p.reassign and (not p.reassign_until or self.steps <= p.reassign_until):
            touched.append(self._lite_reassign(model, entities))
        if p.split:
            count_of = lambda j: self.seen[j]                             # noqa: E731
            warm = entities[count_of(entities) > p.d]
            records = self.splitter.run(e, torch.cat(touched), warm, count_of,
                                        lambda members, clusters: self.gradients(model, members, clusters))
            for r in records:
                self.splits.append((self.steps, r[1], r[2]))
            if records:
                self._sync_rows(torch.tensor([r[1] for r in records]), torch.tensor([r[2] for r in records]))

    def _lite_reassign(self, model, entities: torch.Tensor) -> torch.Tensor:
        """The batch's entities to the best of their cluster and ``m`` random live clusters
        (Section 3.4.3); a warm entity alone in its cluster (Strategy 1) stays."""
        e, p = self.emb, self.emb.params
        counts, cur = self.seen[entities], e._assign[entities]
        free = ~((counts > p.d) & (e.sizes[cur] == 1))
        entities, cur, counts = entities[free], cur[free], counts[free]
        if len(entities) == 0 or e.n_clusters < 2:
            self.moves.append((self.steps, 0))
            return cur[:0]
        draw = torch.randint(e.high, (len(entities), p.m), generator=self.generator)
        draw = torch.where(e.live[draw], draw, cur[:, None])
        cand = torch.cat([cur[:, None], draw], 1)                         # (E, m+1), column 0 = current
        L = self.candidate_losses(model, entities, cand)
        best = L.argmin(1)
        target = torch.where(L[:, 0] <= L.gather(1, best[:, None])[:, 0], cur, cand.gather(1, best[:, None])[:, 0])
        moving = target != cur
        e.move(entities[moving], target[moving], counts[moving])
        self.moves.append((self.steps, int(moving.sum())))
        return target[moving]

    # -- optimiser state ----------------------------------------------------------------------------------
    def _sync_rows(self, src: torch.Tensor, dst: torch.Tensor, clear_from: int | None = None) -> None:
        """Per-row optimiser state follows the rows: grown with the table, copied to a split's new
        row, moved down by renumbering."""
        c = self.emb.centroids
        for opt in self.optimizers:
            state = opt.state.get(c) or {}
            for key, v in state.items():
                if torch.is_tensor(v) and v.dim() and v.shape[1:] == c.shape[1:] and len(v) < len(c):
                    state[key] = torch.cat([v, v.new_zeros(len(c) - len(v), *v.shape[1:])])
        _TrainerSchedule._sync_optimizer_rows(SimpleNamespace(optimizers=lambda: self.optimizers), self.emb,
                                              src=src, dst=dst, clear_from=clear_from)

    def close(self) -> None:
        """Remove the gradient-averaging hook (the embedding then trains without Eq. 7)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
