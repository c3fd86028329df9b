"""The ``replay`` feed: a time-ordered stream with CEL-Lite's experience replay (Section 3.4.2).

Interactions arrive in timestamp order in batches of b (``batch_size``), each batch once per
pass. The step on a batch trains on the batch's rows plus the buffered interactions of the users
and items it touches (each interaction once), read from the per-entity
:class:`~cel.cluster.replay.ReplayBuffer` *before* the batch is buffered; then the batch enters
the buffers. READINGS (Engine): "CEL-Lite is an embedding method plus the Feed's replay buffer"
— so the feed owns the buffer, and ``interactions(side)`` answers from it.

The yielded :class:`ReplayBatch` puts the new rows first: ``batch.fresh`` of them (progressive
scoring must score only those); ``batch.counted`` says whether they are delivered for the first
time (pass 1) and so count as new interactions.

``passes`` > 1 streams a finite data set several times (Table 7's offline use: "trained on the
training fold in time order for E passes"); 0 = without end (the trainer's ``steps`` stops it).
State (``self.state``: position, pass, buffer) is what the trainer checkpoints, so a resumed
run continues the stream exactly.

Shapes: b new rows, K replayed rows (<= 2 · n · b).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterator

import torch

from cel.cluster.interactions import EntityInteractions
from cel.cluster.replay import ReplayBuffer
from cel.train.feeds import Batch, StreamFeed, make_batch


@dataclass
class ReplayBatch(Batch):
    fresh: int = 0          # the first ``fresh`` rows are the batch's new interactions
    counted: bool = True    # they are delivered for the first time (pass 1)

    @classmethod
    def of(cls, batch: Batch, fresh: int, counted: bool) -> "ReplayBatch":
        return cls(**{f.name: getattr(batch, f.name) for f in fields(Batch)}, fresh=fresh, counted=counted)


class ReplayStreamFeed(StreamFeed):
    name = "replay"

    def __init__(self, train, cfg, seed, context=None):
        """n (``cfg.buffer``) and the number of passes (``cfg.passes``; 0 = without end)."""
        super().__init__(train, cfg, seed, context)
        self.buffer_size, self.passes = cfg.buffer, cfg.passes

    @property
    def buffer(self) -> ReplayBuffer:
        """The replay buffer (kept in ``state``, so that it is checkpointed with the position)."""
        if "buffer" not in self.state:
            self.state["buffer"] = ReplayBuffer(self.buffer_size)
        return self.state["buffer"]

    def batches(self) -> Iterator[ReplayBatch]:
        self.state.setdefault("pos", 0)
        self.state.setdefault("pass", 0)
        D, b, t = len(self.order), self.cfg.batch_size, self.train
        while not self.passes or self.state["pass"] < self.passes:
            while self.state["pos"] < D:
                rows = self.order[self.state["pos"]: self.state["pos"] + b]     # (b,) new rows
                first = self.state["pass"] == 0
                users, items = t.users[rows], t.items[rows]
                replay = self.buffer.gather(torch.unique(users), torch.unique(items)).seq
                if not first:                               # a row may be buffered from the last pass
                    replay = replay[~torch.isin(replay, rows)]
                self.buffer.add(users, items, t.labels[rows], seq=rows, count=first)
                self.state["pos"] += len(rows)
                self._inter.clear()
                all_rows = torch.cat([rows, replay])
                batch = make_batch(t, all_rows, self.context, self.scale(len(all_rows)))
                yield ReplayBatch.of(batch, len(rows), first)
            self.state["pass"] += 1
            self.state["pos"] = 0

    def interactions(self, side: str) -> EntityInteractions:
        """The buffered interactions of every entity of ``side`` (what the model may replay)."""
        if side not in self._inter:
            n_own, n_other = (self.train.n_users, self.train.n_items) if side == "user" else \
                             (self.train.n_items, self.train.n_users)
            self._inter[side] = self.buffer.interactions(side, n_own, n_other)
        return self._inter[side]


def register() -> None:
    """Add the feed to ``FEEDS`` under ``replay`` (the run driver's feed registry)."""
    from cel.train.feeds import FEEDS
    FEEDS[ReplayStreamFeed.name] = ReplayStreamFeed


__all__ = ["ReplayBatch", "ReplayStreamFeed", "register"]
