"""Member lists of clusters with O(1) amortised moves and O(size) listing (CEL-Lite, Section 3.4).

CEL-Lite's cost bound (Appendix C.2) needs the members of the cluster being split in
O(||S_q(:, k)||_0), not by scanning the assignment of every entity (O(M) per split would make
the total grow with D). The members of every cluster live in one pool of slots; cluster k owns
the block ``pool[start[k] : start[k] + cap[k]]``, of which the first ``used[k]`` slots are in
use (-1 marks a member that left: a hole).

* ``place(entities, targets)``: move entities (new ones included) to clusters: their old slots
  become holes; a cluster without room moves its live members to a new block of twice the size
  at the end of the pool (the copy is paid by the insertions that filled the old block);
  abandoned blocks are reclaimed by a whole-pool compaction once they exceed half the pool.
* ``members(k)``: the live members of k (and the block compacted in place), O(used[k]).

Everything is vectorised over a batch of moves (sorts and cumulative sums, no Python loop per
entity). Shapes: E entities moved, K clusters, P pool slots.
"""
from __future__ import annotations

import torch

from cel.cluster.growth import doubled, grown

MIN_BLOCK = 4


def _segments(starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(slots, owner): the slots start[g] + 0..len[g]-1 of every segment g, and g for each."""
    owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    offset = torch.arange(len(owner)) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    return starts[owner] + offset, owner


class ClusterMembers:
    def __init__(self, clusters: int = 1, entities: int = 0):
        self.pool = torch.full((64,), -1, dtype=torch.int64)     # (P,) entity per slot, -1 = free
        self.end = 0                                             # first slot after the last block
        self.garbage = 0                                         # slots of abandoned blocks
        self.start = torch.zeros(clusters, dtype=torch.int64)    # (K,)
        self.used = torch.zeros(clusters, dtype=torch.int64)     # (K,) slots in use (members + holes)
        self.cap = torch.zeros(clusters, dtype=torch.int64)      # (K,) block sizes
        self.pos = torch.full((max(1, entities),), -1, dtype=torch.int64)   # (C,) slot of each entity

    # -- capacity ----------------------------------------------------------------------------
    def grow_clusters(self, k: int) -> None:
        pad = k - len(self.start)
        if pad > 0:
            z = torch.zeros(pad, dtype=torch.int64)
            self.start, self.used, self.cap = (torch.cat([t, z]) for t in (self.start, self.used, self.cap))

    def grow_entities(self, c: int) -> None:
        if c > len(self.pos):
            self.pos = torch.cat([self.pos, torch.full((c - len(self.pos),), -1, dtype=torch.int64)])

    def _reserve(self, slots: int) -> None:
        if self.end + slots > len(self.pool):
            self.pool = grown(self.pool, doubled(len(self.pool), self.end + slots), -1)

    # -- moves -------------------------------------------------------------------------------
    def place(self, entities: torch.Tensor, targets: torch.Tensor) -> None:
        """Put ``entities`` (E,) (unique; new or already placed) into clusters ``targets`` (E,)."""
        if len(entities) == 0:
            return
        old = self.pos[entities]
        self.pool[old[old >= 0]] = -1                                # holes where they were
        order = torch.sort(targets, stable=True).indices
        t, e = targets[order], entities[order]
        uniq, need = torch.unique_consecutive(t, return_counts=True)
        short = self.used[uniq] + need > self.cap[uniq]
        if short.any():
            self._relocate(uniq[short], need[short])
        rank = torch.arange(len(t)) - torch.repeat_interleave(torch.cumsum(need, 0) - need, need)
        slot = self.start[t] + self.used[t] + rank
        self.pool[slot] = e
        self.pos[e] = slot
        self.used[uniq] += need

    def _relocate(self, clusters: torch.Tensor, extra: torch.Tensor) -> None:
        """Move the live members of ``clusters`` to fresh blocks of 2·(live + extra) slots."""
        slots, owner = _segments(self.start[clusters], self.used[clusters])
        ent = self.pool[slots]
        alive = ent >= 0
        live = torch.bincount(owner[alive], minlength=len(clusters))
        cap = (2 * (live + extra)).clamp_min(MIN_BLOCK)
        self._reserve(int(cap.sum()))
        start = self.end + torch.cumsum(cap, 0) - cap
        new_slots, _ = _segments(start, live)
        self.pool[slots] = -1
        self.pool[new_slots] = ent[alive]                            # alive entries are in cluster order
        self.pos[ent[alive]] = new_slots
        self.garbage += int(self.cap[clusters].sum())
        self.start[clusters], self.used[clusters], self.cap[clusters] = start, live, cap
        self.end += int(cap.sum())
        if self.garbage > self.end // 2:
            self._compact()

    def _compact(self) -> None:
        """Rewrite every block contiguously into a new pool (drops abandoned blocks and holes)."""
        clusters = torch.nonzero(self.cap > 0).squeeze(1)
        slots, owner = _segments(self.start[clusters], self.used[clusters])
        ent = self.pool[slots]
        alive = ent >= 0
        live = torch.bincount(owner[alive], minlength=len(clusters))
        cap = torch.maximum(self.cap[clusters], 2 * live).clamp_min(MIN_BLOCK)
        self.pool = torch.full((doubled(64, int(cap.sum())),), -1, dtype=torch.int64)
        start = torch.cumsum(cap, 0) - cap
        new_slots, _ = _segments(start, live)
        self.pool[new_slots] = ent[alive]
        self.pos[ent[alive]] = new_slots
        self.start[clusters], self.used[clusters], self.cap[clusters] = start, live, cap
        self.end, self.garbage = int(cap.sum()), 0

    # -- listing -----------------------------------------------------------------------------
    def members(self, k: int) -> torch.Tensor:
        """The live members of cluster k, in their block's order (holes squeezed out in place)."""
        s, u = int(self.start[k]), int(self.used[k])
        block = self.pool[s:s + u]
        live = block[block >= 0].clone()
        if len(live) < u:
            self.pool[s:s + len(live)] = live
            self.pool[s + len(live):s + u] = -1
            self.pos[live] = torch.arange(s, s + len(live))
            self.used[k] = len(live)
        return live

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.pool, self.start, self.used, self.cap, self.pos))


__all__ = ["ClusterMembers"]
