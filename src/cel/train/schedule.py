"""The CEL cluster schedule as a trainer callback (Section 3.2, Appendix A.1, 4.2.1).

(Gradient averaging, Eq. 7, is the generic :class:`cel.train.grad_avg.GradientAveraging`.)
* every t2 steps, while M_q is below the budget: split one cluster (criterion, then GPCA);
* every t1 steps: reassign every entity to its lowest-loss cluster (Eq. 4), drop empty ones;
* at ``personalize_at``: untie (all or only warm entities) and add the λ_p regulariser.

All of it runs under ``torch.no_grad()`` (the trainer's ``trigger``).
"""
from __future__ import annotations

import torch

from cel.cluster.criteria import NEEDS_LOSS, ClusterStats, choose_cluster
from cel.cluster.reassign import cluster_losses, reassign
from cel.cluster.split import SplitContext, split_mask
from cel.embeddings.cel import CELEmbedding
from cel.train.trainer import Callback, FullBatchTrainer


class ClusterSchedule(Callback):
    def __init__(self, side: str = "item"):
        if side not in ("item", "user"):
            raise ValueError(side)
        self.side = side
        self.moves: list[tuple[int, int]] = []       # (step, entities moved) per reassignment
        self.splits: list[tuple[int, int, int]] = []  # (step, parent, size of the parent before)
        self.personalized_at = 0

    # -- helpers ----------------------------------------------------------------------------
    def emb(self, t: FullBatchTrainer) -> CELEmbedding:
        return t.item_emb if self.side == "item" else t.user_emb

    def _data(self, t: FullBatchTrainer):
        """(other-side table (N_o, R), other index (D,), entity index (D,))."""
        if self.side == "item":
            return t.user_emb.table().detach(), t.pairs.users, t.pairs.items
        return t.item_emb.table().detach(), t.pairs.items, t.pairs.users

    def entity_index(self, t: FullBatchTrainer) -> torch.Tensor:
        """(D,) the clustered entity of each training interaction."""
        return t.pairs.items if self.side == "item" else t.pairs.users

    def counts(self, t: FullBatchTrainer) -> torch.Tensor:
        if not hasattr(self, "_counts"):
            self._counts = torch.bincount(self.entity_index(t), minlength=self.emb(t).num_entities)
        return self._counts

    @staticmethod
    def frozen(e: CELEmbedding) -> bool:
        """A clustering taken from elsewhere and kept fixed (Table 11 retraining, Table 5 rules)."""
        p = e.params
        return bool(p.frozen_assignments) or (p.init != "random" and not p.cluster_after_init)

    def ready(self, t: FullBatchTrainer) -> bool:
        """Early stopping / step selection only once the cluster budget is reached (or the
        entities are untied, when personalisation is on)."""
        e = self.emb(t)
        p = e.params
        if p.personalize_at:
            return self.personalized_at > 0
        if self.frozen(e) or not p.split:
            return True
        self._reached = getattr(self, "_reached", False) or e.n_clusters >= e.max_clusters
        return self._reached

    # -- events -----------------------------------------------------------------------------
    def on_step_end(self, t: FullBatchTrainer) -> None:
        e, p, step = self.emb(t), self.emb(t).params, t.step
        if e.personal is not None:
            return
        if p.personalize_at and step == p.personalize_at:
            mask = self.counts(t) > p.warm_only if p.warm_only else torch.ones(e.num_entities, dtype=torch.bool)
            e.personalize(mask)
            t.optimizer = t.build_optimizer()
            self.personalized_at = step
            t.log(f"[cel] step {step}: personalised {int(mask.sum())} of {e.num_entities} entities")
            return
        if self.frozen(e):
            return
        if p.split and step % p.t2 == 0 and e.n_clusters < e.max_clusters:
            self.split_once(t)
        if p.reassign and step % p.t1 == 0 and (not p.reassign_until or step <= p.reassign_until):
            self.reassign_all(t)

    # -- the two cluster operations --------------------------------------------------------
    def split_once(self, t: FullBatchTrainer) -> int | None:
        e, p = self.emb(t), self.emb(t).params
        grads = e.entity_grads()
        if grads is None:
            return None
        losses = self.entity_losses(t) if p.criterion in NEEDS_LOSS else None
        stats = ClusterStats(e.assign, e.n_clusters, self.counts(t), grads, losses)
        k = choose_cluster(p.criterion, stats)
        if k is None:
            return None
        members = torch.nonzero(e.assign == k).squeeze(1)
        ctx = SplitContext(grads[members], self.counts(t)[members], e.generator, p.delta, p.normalize,
                           reps=lambda: self.user_inspired(t)[members])
        mask = split_mask(p.split_method, ctx)
        new = e.split(k, mask)
        self.splits.append((t.step, k, len(members)))
        self._sync_optimizer_rows(t, e, src=torch.tensor([k]), dst=torch.tensor([new]))
        return new

    def entity_major(self, t: FullBatchTrainer):
        """(other index (D,), targets (D,), segment pointers (M+1,)) in entity-major order."""
        if not hasattr(self, "_major"):
            p = t.pairs
            if self.side == "item":
                self._major = (p.i_col, t.ratings[p.i_perm].contiguous(), p.i_crow)
            else:
                self._major = (p.items, t.ratings, p.u_crow)
        return self._major

    def best_assignment(self, t: FullBatchTrainer) -> torch.Tensor:
        """(M,) the lowest-loss cluster of every entity (Eq. 4), without applying it."""
        e = self.emb(t)
        other = (t.user_emb if self.side == "item" else t.item_emb).table().detach()
        oidx, x, crow = self.entity_major(t)
        L = cluster_losses(t.model, other[oidx], x, e.centroids.detach()[: e.n_clusters], crow,
                           self.side, e.params.chunk_elems)
        return reassign(L, e.assign, self.counts(t))

    def reassign_all(self, t: FullBatchTrainer) -> int:
        e = self.emb(t)
        moved, mapping = e.reassign(self.best_assignment(t))
        keep = torch.nonzero(mapping >= 0).squeeze(1)
        if len(keep) < len(mapping):
            self._sync_optimizer_rows(t, e, src=keep, dst=mapping[keep], clear_from=len(keep))
        self.moves.append((t.step, moved))
        return moved

    # -- statistics -------------------------------------------------------------------------
    def entity_losses(self, t: FullBatchTrainer) -> torch.Tensor:
        from cel.train.trainer import score

        pred = score(t.model, t.user_emb, t.item_emb, t.pairs).detach()
        ent = self.entity_index(t)
        return torch.zeros(self.emb(t).num_entities, dtype=torch.float64).index_add_(
            0, ent, (pred - t.ratings).pow(2).double())

    def user_inspired(self, t: FullBatchTrainer) -> torch.Tensor:
        """(M, R): each entity as the mean embedding of the other side it interacted with."""
        other, oidx, ent = self._data(t)
        sums = torch.zeros(self.emb(t).num_entities, other.shape[1]).index_add_(0, ent, other[oidx])
        return sums / self.counts(t).clamp_min(1)[:, None]

    @staticmethod
    def _sync_optimizer_rows(t: FullBatchTrainer, e: CELEmbedding, src, dst, clear_from=None) -> None:
        """Keep per-row optimiser state (Adam moments, ...) with its cluster after a split
        (the new row copies its parent's) or a compaction (rows move down)."""
        for opt in t.optimizers():
            state = opt.state.get(e.centroids)
            if not state:
                continue
            for v in state.values():
                if torch.is_tensor(v) and v.shape == e.centroids.shape:
                    v[dst] = v[src].clone()
                    if clear_from is not None:
                        v[clear_from:] = 0
