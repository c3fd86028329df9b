"""CEL-Lite's cluster schedule as a trainer callback (Section 3.4, Appendices A.1, C.2).

After the SGD step on each batch (``on_step_end``), every ``t1`` batches (the paper: t1 = 1):

1. **Counts.** The batch's new interactions are added to their clusters' ||W S_q(:, k)||_0.
2. **Reassignment** (Section 3.4.3). Only the entities of the current batch are considered;
   each is scored, on its <= n buffered interactions, under its current cluster and m clusters
   drawn uniformly from the live ones (the exact loss of the model's prediction, Eq. 4
   restricted to m + 1 candidates: one (E, m+1, n) batch), and moves to the best (a tie keeps
   the current cluster). A Strategy-1 singleton (alone, > d interactions) keeps its own cluster.
   O(n m b R) per batch.
3. **Splits** (Section 3.4.4): Strategies 1 and 2 and the priority queue of
   :class:`~cel.cluster.lite_split.LiteSplitter`, with Eq. 5's gradients computed from the
   members' buffers. Stops at the cap M_q.
4. **Personalisation** at ``personalize_at`` (Section 4.2.1, as in offline CEL): every stored
   entity (or those with more than ``warm_only`` interactions) is untied; cluster operations stop.

The data comes from the feed's :class:`~cel.cluster.replay.ReplayBuffer` (``feed.buffer``; the
``replay`` feed), the candidates from a ``torch.Generator`` seeded from the run seed. All state is
plain attributes, so the trainer's checkpoint (which pickles its callbacks) holds it.

``ops`` counts the work per kind (rows of interactions touched), for the complexity checks:
``optim_rows`` rows in the SGD steps, ``reassign_pairs`` (entity, candidate, buffered
interaction) triples scored, ``split_pairs`` buffered interactions read for Eq. 5 gradients and
``split_members`` members listed by Strategy 2, against ``fresh`` new interactions.
"""
from __future__ import annotations

import time

import torch

from cel.cluster.lite_scoring import buffer_gradients, candidate_losses
from cel.cluster.lite_split import LiteSplitter
from cel.embeddings.cel_lite import CELLiteEmbedding
from cel.train.schedule import ClusterSchedule
from cel.train.trainer import Callback, Trainer

OPS = ("fresh", "optim_rows", "reassign_entities", "reassign_pairs", "moved", "split_members", "split_pairs",
       "strategy1", "strategy2")


class LiteSchedule(Callback):
    def __init__(self, side: str = "item", seed: int = 0):
        if side not in ("item", "user"):
            raise ValueError(side)
        self.side = side
        self.generator = torch.Generator().manual_seed(2 * seed + (side == "user"))
        self.splitter: LiteSplitter | None = None
        self.moves: list[tuple[int, int]] = []          # (step, entities moved) per reassignment
        self.splits: list[tuple[int, ...]] = []         # (step, strategy, parent, new, interactions, members...)
        self.personalized_at = 0
        self.ops = dict.fromkeys(OPS, 0)
        self.seconds = {"reassign": 0.0, "split": 0.0}   # wall time spent (not deterministic; for benchmarks)
        self._reached = False

    # -- what the schedule reads ----------------------------------------------------------------
    def emb(self, t: Trainer) -> CELLiteEmbedding:
        return t.item_emb if self.side == "item" else t.user_emb

    def other(self, t: Trainer):
        return t.user_emb if self.side == "item" else t.item_emb

    def count_of(self, t: Trainer):
        buf = t.feed.buffer
        return lambda ids: buf.count_of(self.side, ids)

    def buffered(self, t: Trainer, entities: torch.Tensor):
        """(other-side embeddings (E, n, R), targets (E, n), valid (E, n)) of the entities' buffers."""
        _, other, y, valid = t.feed.buffer.padded(self.side, entities)
        return self.other(t)(other).detach(), y, valid

    def ready(self, t: Trainer) -> bool:
        """Step selection / early stopping only once the cap is reached (or after untying)."""
        e = self.emb(t)
        if e.params.personalize_at:
            return self.personalized_at > 0
        if not e.params.split:
            return True
        self._reached = self._reached or e.n_clusters >= e.max_clusters
        return self._reached

    # -- events -----------------------------------------------------------------------------------
    def on_fit_start(self, t: Trainer) -> None:
        if not isinstance(self.emb(t), CELLiteEmbedding):
            raise TypeError(f"LiteSchedule({self.side!r}) needs a CELLiteEmbedding on that side")
        if not hasattr(t.feed, "buffer"):
            raise TypeError("LiteSchedule needs a feed with replay buffers (the 'replay' feed)")
        p = self.emb(t).params
        self.splitter = LiteSplitter(p.d, p.normalize, p.delta)

    def on_after_backward(self, t: Trainer) -> None:
        self.fit_optimizer_state(t)

    def fit_optimizer_state(self, t: Trainer) -> None:
        """Rows added since the last step (admission after untying, a grown cluster table) get
        zero optimiser state (Adam moments, ...), before the optimiser steps."""
        e = self.emb(t)
        for opt in t.optimizers():
            for param in (e.centroids, e.personal):
                state = opt.state.get(param) if param is not None else None
                for key, v in (state or {}).items():
                    if torch.is_tensor(v) and v.dim() and v.shape[1:] == param.shape[1:] and len(v) < len(param):
                        state[key] = torch.cat([v, torch.zeros(len(param) - len(v), *v.shape[1:], dtype=v.dtype)])

    def on_step_end(self, t: Trainer) -> None:
        e, p, step, batch = self.emb(t), self.emb(t).params, t.step, t.batch
        fresh = getattr(batch, "fresh", len(batch))
        ids = (batch.items if self.side == "item" else batch.users)[:fresh]     # (b,) the new interactions
        self.ops["fresh"] += fresh
        self.ops["optim_rows"] += len(batch)
        if getattr(batch, "counted", True):
            e.count_interactions(ids)
        if e.personal is not None:
            return
        if p.personalize_at and step == p.personalize_at:
            self.personalize(t)
            return
        if step % p.t1:
            return
        entities = torch.unique(ids)
        touched = [e._assign[entities]]
        t0 = time.perf_counter()
        if p.reassign and (not p.reassign_until or step <= p.reassign_until):
            touched.append(self.reassign(t, entities))
        t1 = time.perf_counter()
        if p.split:
            self.split(t, entities, torch.cat(touched))
        self.seconds["reassign"] += t1 - t0
        self.seconds["split"] += time.perf_counter() - t1

    # -- the operations -----------------------------------------------------------------------------
    def reassign(self, t: Trainer, entities: torch.Tensor) -> torch.Tensor:
        """Move each entity of the batch to the best of its cluster and m random live clusters.
        Returns the clusters that received entities."""
        e, p = self.emb(t), self.emb(t).params
        counts = self.count_of(t)(entities)
        cur = e._assign[entities]
        free = ~((counts > p.d) & (e.sizes[cur] == 1))                     # Strategy-1 singletons stay
        entities, cur, counts = entities[free], cur[free], counts[free]
        E = len(entities)
        if E == 0 or e.n_clusters < 2:
            self.moves.append((t.step, 0))
            return cur[:0]
        other, y, valid = self.buffered(t, entities)                         # (E, n, R), (E, n), (E, n)
        draw = torch.randint(e.high, (E, p.m), generator=self.generator)
        draw = torch.where(e.live[draw], draw, cur[:, None])                 # a freed row: no candidate
        cand = torch.cat([cur[:, None], draw], 1)                            # (E, m+1), column 0 = current
        L = candidate_losses(t.model, self.side, other, e.centroids.detach()[cand], y, valid,
                             t.task.loss_terms, p.chunk_elems)               # (E, m+1)
        best = L.argmin(1)
        target = torch.where(L[:, 0] <= L.gather(1, best[:, None])[:, 0], cur, cand.gather(1, best[:, None])[:, 0])
        moving = target != cur
        e.move(entities[moving], target[moving], counts[moving])
        self.ops["reassign_entities"] += E
        self.ops["reassign_pairs"] += int(valid.sum()) * (p.m + 1)
        self.ops["moved"] += int(moving.sum())
        self.moves.append((t.step, int(moving.sum())))
        return target[moving]

    def split(self, t: Trainer, entities: torch.Tensor, touched: torch.Tensor) -> None:
        e, p = self.emb(t), self.emb(t).params
        count_of = self.count_of(t)

        def gradients(members: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
            other, y, valid = self.buffered(t, members)
            self.ops["split_pairs"] += int(valid.sum())
            own = e.centroids.detach()[clusters]                            # members share their cluster's row
            return buffer_gradients(t.model, self.side, other, own, y, valid, t.task.loss_terms)

        before = self.splitter.members_read
        warm = entities[count_of(entities) > p.d]
        records = self.splitter.run(e, touched, warm, count_of, gradients)
        self.ops["split_members"] += self.splitter.members_read - before
        for r in records:
            self.ops["strategy1" if r[0] == 1 else "strategy2"] += 1
            self.splits.append((t.step, *r))
        if records:        # a new row starts from its parent's optimiser state (Adam moments, ...)
            self.fit_optimizer_state(t)
            ClusterSchedule._sync_optimizer_rows(t, e, src=torch.tensor([r[1] for r in records]),
                                                 dst=torch.tensor([r[2] for r in records]))

    def personalize(self, t: Trainer) -> None:
        e, p = self.emb(t), self.emb(t).params
        stored = torch.arange(e.num_entities)
        mask = self.count_of(t)(stored) > p.warm_only if p.warm_only else torch.ones(e.num_entities, dtype=torch.bool)
        e.personalize(mask)
        t.optimizer = t.build_optimizer()
        self.personalized_at = t.step
        t.log(f"[cel] step {t.step}: personalised {int(mask.sum())} of {e.num_entities} {self.side}s")


__all__ = ["LiteSchedule", "OPS"]
