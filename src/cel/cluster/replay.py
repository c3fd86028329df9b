"""Per-entity experience-replay buffers of CEL-Lite (Section 3.4.2).

"We buffer from online batches a small number of the latest interactions (<= n) from each user
and item for experience replay." Every user and every item owns a ring of n slots; an
interaction (u, i, x) with sequence id s (the row id of the interaction in the stream) is written
into u's ring as (s, i, x) and into i's ring as (s, u, x). When a ring is full the oldest slot is
overwritten, so a ring always holds exactly the latest min(n, interactions) of its entity.

Entities are admitted at run time: the rings grow by doubling their capacity when an id beyond
the capacity arrives; there is no vocabulary known in advance. ``add`` is vectorised over a batch
(one sort per side, no Python loop per interaction).

Besides the rings each side keeps ``counts`` (C,): the number of distinct interactions of every
entity delivered so far, ||W(:, j)||_0, which Strategy 1 and the split criterion of Strategy 2
count (Section 3.4.4). ``add(..., count=False)`` (later passes over a finite data set) refreshes
the rings without counting the interactions again; a row already in a ring is not written twice.

Shapes: B batch, n ring length, C capacity (entities) of a side, E queried entities.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cel.cluster.growth import doubled, grown
from cel.cluster.interactions import EntityInteractions

SIDES = ("user", "item")


@dataclass(frozen=True)
class Buffered:
    """Interactions read back from the buffers: (K,) each, sorted by sequence id, no duplicates."""

    seq: torch.Tensor      # (K,) int64 sequence (row) ids
    users: torch.Tensor    # (K,) int64
    items: torch.Tensor    # (K,) int64
    labels: torch.Tensor   # (K,) float32

    def __len__(self) -> int:
        return len(self.seq)


class _Rings:
    """The rings of one side: ``seq``/``other``/``label`` (C, n), ``writes`` and ``counts`` (C,)."""

    def __init__(self, n: int, capacity: int = 16):
        self.n = n
        self.seq = torch.full((capacity, n), -1, dtype=torch.int64)
        self.other = torch.zeros(capacity, n, dtype=torch.int64)
        self.label = torch.zeros(capacity, n, dtype=torch.float32)
        self.writes = torch.zeros(capacity, dtype=torch.int64)     # slots written so far (ring head = writes % n)
        self.counts = torch.zeros(capacity, dtype=torch.int64)     # distinct interactions delivered

    @property
    def capacity(self) -> int:
        return self.seq.shape[0]

    def grow(self, needed: int) -> None:
        """Double the capacity until ``needed`` entities fit (amortised O(1) per entity)."""
        if needed <= self.capacity:
            return
        cap = doubled(self.capacity, needed)
        self.seq = grown(self.seq, cap, -1)
        self.other, self.label = grown(self.other, cap), grown(self.label, cap)
        self.writes, self.counts = grown(self.writes, cap), grown(self.counts, cap)

    def add(self, entity: torch.Tensor, other: torch.Tensor, label: torch.Tensor, seq: torch.Tensor,
            count: bool) -> None:
        """Write a batch (B,) in order: the last n writes of each entity survive (oldest overwritten)."""
        if len(entity) == 0:
            return
        self.grow(int(entity.max()) + 1)
        present = (self.seq[entity] == seq[:, None]).any(1)                # (B,) already in the ring
        if count:
            self.counts.index_add_(0, entity, (~present).long())
        keep = ~present
        entity, other, label, seq = entity[keep], other[keep], label[keep], seq[keep]
        if len(entity) == 0:
            return
        order = torch.sort(entity, stable=True).indices                     # time order kept per entity
        e = entity[order]
        uniq, per = torch.unique_consecutive(e, return_counts=True)
        first = torch.cumsum(per, 0) - per
        rank = torch.arange(len(e)) - torch.repeat_interleave(first, per)  # 0.. within the entity
        last_n = rank >= torch.repeat_interleave(per, per) - self.n         # earlier ones would be overwritten
        slot = (self.writes[e] + rank) % self.n
        rows, cols, src = e[last_n], slot[last_n], order[last_n]
        self.seq[rows, cols] = seq[src]
        self.other[rows, cols] = other[src]
        self.label[rows, cols] = label[src]
        self.writes.index_add_(0, uniq, per)

    def span(self) -> int:
        """1 + the largest entity id buffered (0 if none)."""
        ids = torch.nonzero(self.writes).squeeze(1)
        return int(ids[-1]) + 1 if len(ids) else 0

    def filled(self, entities: torch.Tensor) -> torch.Tensor:
        """(E,) number of valid slots, min(writes, n)."""
        inside = entities < self.capacity
        w = self.writes[entities.clamp(max=self.capacity - 1)]
        return torch.where(inside, w.clamp(max=self.n), 0)

    def padded(self, entities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(seq, other, label, valid), each (E, n), oldest slot first. Ids beyond the capacity
        (never seen) give empty rows."""
        n = self.n
        inside = entities < self.capacity
        e = entities.clamp(max=self.capacity - 1)
        w = torch.where(inside, self.writes[e], 0)[:, None]               # (E, 1)
        j = torch.arange(n)[None, :]
        col = torch.where(w >= n, (w + j) % n, j)                          # chronological: oldest at the head once full
        flat = e[:, None] * n + col                                        # (E, n) into the (C·n,) slot arrays
        valid = j < w
        return self.seq.view(-1)[flat], self.other.view(-1)[flat], self.label.view(-1)[flat], valid

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.seq, self.other, self.label, self.writes, self.counts))


class ReplayBuffer:
    """The latest ``n`` interactions of every user and every item (Section 3.4.2).

    ``add(users, items, labels, seq=None, count=True)`` appends a batch in time order;
    ``rows(side, entities)`` / ``gather(users, items)`` read back the deduplicated union of the
    buffered interactions of some entities; ``padded(side, entities)`` gives them as (E, n)
    blocks for batched scoring; ``interactions(side)`` is the
    :class:`~cel.cluster.interactions.EntityInteractions` view of a whole side.
    """

    def __init__(self, n: int = 20):
        if n < 1:
            raise ValueError(f"buffer length n must be >= 1, got {n}")
        self.n = n
        self.sides = {s: _Rings(n) for s in SIDES}
        self.next_seq = 0                    # sequence ids handed out when ``add`` gets none

    # -- writing ---------------------------------------------------------------------------
    def add(self, users: torch.Tensor, items: torch.Tensor, labels: torch.Tensor,
            seq: torch.Tensor | None = None, count: bool = True) -> torch.Tensor:
        """Buffer a batch of interactions (B,), given in time order; returns their sequence ids.

        ``seq``: their ids (e.g. row ids of the stream's table; unique per interaction), by default
        consecutive numbers. ``count=False``: do not count them again in ``counts`` (a later pass
        over the same data); a row already in a ring is never written twice."""
        users, items = users.long(), items.long()
        labels = labels.to(torch.float32)
        if seq is None:
            seq = torch.arange(self.next_seq, self.next_seq + len(users), dtype=torch.int64)
        seq = seq.long()
        if len(seq):
            self.next_seq = max(self.next_seq, int(seq.max()) + 1)
        self.sides["user"].add(users, items, labels, seq, count)
        self.sides["item"].add(items, users, labels, seq, count)
        return seq

    # -- reading ---------------------------------------------------------------------------
    def counts(self, side: str) -> torch.Tensor:
        """(C,) distinct interactions delivered per entity of ``side`` (C = capacity; 0 beyond)."""
        return self.sides[side].counts

    def count_of(self, side: str, entities: torch.Tensor) -> torch.Tensor:
        """(E,) interactions delivered so far of ``entities`` (0 for ids never seen)."""
        c = self.sides[side].counts
        inside = entities < len(c)
        return torch.where(inside, c[entities.clamp(max=len(c) - 1)], 0)

    def padded(self, side: str, entities: torch.Tensor):
        """(seq, other, label, valid), each (E, n): the buffered interactions of ``entities``,
        oldest first; ``other`` is the id on the other side."""
        return self.sides[side].padded(entities.long())

    def _valid(self, side: str, entities: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(seq, users, items, labels) of every filled slot of ``entities`` (repeats possible)."""
        seq, other, label, valid = self.padded(side, entities)
        own = entities.long()[:, None].expand_as(seq)
        u, i = (own, other) if side == "user" else (other, own)
        return seq[valid], u[valid], i[valid], label[valid]

    def rows(self, side: str, entities: torch.Tensor) -> Buffered:
        """The buffered interactions of ``entities`` of ``side`` (deduplicated union)."""
        return _dedup(*self._valid(side, entities))

    def gather(self, users: torch.Tensor, items: torch.Tensor) -> Buffered:
        """The union of the buffered interactions of ``users`` and of ``items`` (each interaction
        once): one deduplication of both sides' slots (not one per side and one of the union)."""
        a, b = self._valid("user", users), self._valid("item", items)
        return _dedup(*(torch.cat([x, y]) for x, y in zip(a, b)))

    def interactions(self, side: str, num_entities: int | None = None,
                     num_other: int | None = None) -> EntityInteractions:
        """Everything buffered for ``side`` as :class:`EntityInteractions` (entity-major)."""
        rings, other_rings = self.sides[side], self.sides["item" if side == "user" else "user"]
        M = max(num_entities or 0, rings.span())
        N = max(num_other or 0, other_rings.span())
        ent = torch.arange(rings.span())
        _, other, label, valid = rings.padded(ent)
        entity = ent[:, None].expand_as(other)
        return EntityInteractions.from_arrays(entity[valid], other[valid], label[valid], M, N)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"n": self.n, "next_seq": self.next_seq,
                **{f"{s}.{k}": getattr(r, k).clone() for s, r in self.sides.items()
                   for k in ("seq", "other", "label", "writes", "counts")}}

    def load_state_dict(self, state: dict) -> None:
        self.n, self.next_seq = int(state["n"]), int(state["next_seq"])
        self.sides = {}
        for s in SIDES:
            r = _Rings(self.n, 1)
            for k in ("seq", "other", "label", "writes", "counts"):
                setattr(r, k, state[f"{s}.{k}"].clone())
            self.sides[s] = r

    def nbytes(self) -> int:
        """Bytes held by the rings and counters of both sides (capacity included)."""
        return sum(r.nbytes() for r in self.sides.values())


def _dedup(seq: torch.Tensor, users: torch.Tensor, items: torch.Tensor, labels: torch.Tensor) -> Buffered:
    """Keep one copy of each sequence id (sorted by id)."""
    if len(seq) == 0:
        return Buffered(seq, users, items, labels)
    uniq, inverse = torch.unique(seq, return_inverse=True)
    first = torch.full((len(uniq),), len(seq), dtype=torch.int64).scatter_reduce_(
        0, inverse, torch.arange(len(seq)), reduce="amin")
    return Buffered(uniq, users[first], items[first], labels[first])


__all__ = ["Buffered", "ReplayBuffer", "SIDES"]
