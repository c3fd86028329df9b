"""The CEL cluster schedule as a trainer callback (Section 3.2, Appendix A.1, 4.2.1).

(Gradient averaging, Eq. 7, is the generic :class:`cel.train.grad_avg.GradientAveraging`.)
* every t2 steps, while M_q is below the budget: split one cluster (criterion, then GPCA);
* every t1 steps: reassign every entity to its lowest-loss cluster (Eq. 4), drop empty ones;
* at ``personalize_at``: untie (all or only warm entities) and add the λ_p regulariser.

The data comes from the Feed (``trainer.feed.interactions(side)``: each entity's training
interactions), never from full-batch tensors, so the schedule works with every Feed and every
interaction model. All of it runs under ``torch.no_grad()`` (the trainer's ``trigger``), except
the gradient of Eq. 5, which is computed here on the entities' interactions.
"""
from __future__ import annotations

import torch

from cel.cluster.criteria import NEEDS_LOSS, ClusterStats, choose_cluster
from cel.cluster.reassign import cluster_losses, reassign
from cel.cluster.split import SplitContext, split_mask
from cel.embeddings.cel import CELEmbedding
from cel.models.base import PairScorer
from cel.models.pairs import sampled_dot
from cel.cluster.interactions import EntityInteractions
from cel.train.trainer import Callback, Trainer


class ClusterSchedule(Callback):
    def __init__(self, side: str = "item"):
        if side not in ("item", "user"):
            raise ValueError(side)
        self.side = side
        self.moves: list[tuple[int, int]] = []       # (step, entities moved) per reassignment
        self.splits: list[tuple[int, int, int]] = []  # (step, parent, size of the parent before)
        self.personalized_at = 0
        self._reached = False

    # -- what the schedule reads ------------------------------------------------------------
    def emb(self, t: Trainer) -> CELEmbedding:
        return t.item_emb if self.side == "item" else t.user_emb

    def other_table(self, t: Trainer) -> torch.Tensor:
        """(N, R) the other side's embeddings (detached)."""
        return (t.user_emb if self.side == "item" else t.item_emb).table().detach()

    def interactions(self, t: Trainer) -> EntityInteractions:
        return t.feed.interactions(self.side)

    def counts(self, t: Trainer) -> torch.Tensor:
        return self.interactions(t).counts()

    @staticmethod
    def frozen(e: CELEmbedding) -> bool:
        """A clustering taken from elsewhere and kept fixed (Table 11 retraining, Table 5 rules)."""
        p = e.params
        return bool(p.frozen_assignments or p.frozen_from) or (p.init != "random" and not p.cluster_after_init)

    def ready(self, t: Trainer) -> bool:
        """Early stopping / step selection only once the cluster budget is reached (or the
        entities are untied, when personalisation is on)."""
        e = self.emb(t)
        p = e.params
        if p.personalize_at:
            return self.personalized_at > 0
        if self.frozen(e) or not p.split:
            return True
        self._reached = self._reached or e.n_clusters >= e.max_clusters
        return self._reached

    # -- events -----------------------------------------------------------------------------
    def split_due(self, t: Trainer) -> bool:
        e = self.emb(t)
        return (e.personal is None and not self.frozen(e) and e.params.split and t.step % e.params.t2 == 0
                and e.n_clusters < e.max_clusters)

    def on_after_backward(self, t: Trainer) -> None:
        """Eq. 5 uses the gradients of this step: take them at the parameters the step starts from."""
        self._grads = self.entity_grads(t) if self.split_due(t) else None

    def on_step_end(self, t: Trainer) -> None:
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
        if self.split_due(t):
            self.split_once(t)
        if p.reassign and step % p.t1 == 0 and (not p.reassign_until or step <= p.reassign_until):
            self.reassign_all(t)

    # -- the two cluster operations --------------------------------------------------------
    def split_once(self, t: Trainer) -> int | None:
        e, p = self.emb(t), self.emb(t).params
        grads = getattr(self, "_grads", None)
        grads = self.entity_grads(t) if grads is None else grads
        losses = self.entity_losses(t) if p.criterion in NEEDS_LOSS else None
        stats = ClusterStats(e.assign, e.n_clusters, self.counts(t), grads, losses)
        k = choose_cluster(p.criterion, stats, p.split_threshold)
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

    def best_assignment(self, t: Trainer) -> torch.Tensor:
        """(M,) the lowest-loss cluster of every entity (Eq. 4), without applying it."""
        e = self.emb(t)
        L = cluster_losses(t.model, self.other_table(t), self.interactions(t), e.centroids.detach()[: e.n_clusters],
                           self.side, None if t.task.squared_error else t.task.loss_terms, e.params.chunk_elems)
        return reassign(L, e.assign, self.counts(t))

    def reassign_all(self, t: Trainer) -> int:
        e = self.emb(t)
        moved, mapping = e.reassign(self.best_assignment(t))
        keep = torch.nonzero(mapping >= 0).squeeze(1)
        if len(keep) < len(mapping):
            self._sync_optimizer_rows(t, e, src=keep, dst=mapping[keep], clear_from=len(keep))
        self.moves.append((t.step, moved))
        return moved

    # -- statistics on each entity's interactions ----------------------------------------------
    def _predictions(self, t: Trainer, table: torch.Tensor) -> torch.Tensor:
        """(D,) model outputs of every interaction (entity-major) with entity embeddings ``table``.
        Dot-product models: one SDDMM on the (M, N) interaction pattern, no (D, R) gathers."""
        inter, other = self.interactions(t), self.other_table(t)
        if isinstance(t.model, PairScorer):
            return sampled_dot(inter.crow, inter.other, table, other)
        o, x = other[inter.other], table[inter.entity()]
        return t.model(x, o) if self.side == "user" else t.model(o, x)

    def entity_grads(self, t: Trainer) -> torch.Tensor:
        """(M, R) g_j = -∂L/∂B(j,:) of the task loss on entity j's interactions (Eq. 5's G).
        Dot-product models: ∂L/∂b_j = Σ_d ℓ'(p_d) o_d, one CSR @ dense product (about one step)."""
        inter, table = self.interactions(t), self.emb(t).table().detach()
        if isinstance(t.model, PairScorer):
            pred = self._predictions(t, table).requires_grad_(True)
            with torch.enable_grad():
                t.task.loss_terms(pred, inter.targets).sum().backward()
            return -(inter.csr(pred.grad) @ self.other_table(t))
        table.requires_grad_(True)
        with torch.enable_grad():
            t.task.loss_terms(self._predictions(t, table), inter.targets).sum().backward()
        return -table.grad

    def entity_losses(self, t: Trainer) -> torch.Tensor:
        """(M,) summed task loss of each entity's interactions."""
        inter = self.interactions(t)
        pred = self._predictions(t, self.emb(t).table().detach())
        return inter.segment_sum(t.task.loss_terms(pred, inter.targets).double())

    def user_inspired(self, t: Trainer) -> torch.Tensor:
        """(M, R): each entity as the mean embedding of the other side it interacted with."""
        inter = self.interactions(t)
        sums = inter.segment_sum(self.other_table(t)[inter.other])
        return sums / inter.counts().clamp_min(1)[:, None]

    @staticmethod
    def _sync_optimizer_rows(t: Trainer, e: CELEmbedding, src, dst, clear_from=None) -> None:
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
