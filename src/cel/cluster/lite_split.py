"""CEL-Lite's cluster split (Section 3.4.4, Appendix A.1, C.2): Strategies 1 and 2 driven by a
priority queue, each split O(n · ||S_q(:, k)||_0 · R).

* **Strategy 1.** An entity with more than d interactions leaves its cluster and forms a cluster
  by itself. It does so once the rest of its cluster keeps at least d/2 interactions, so that
  every cluster a split produces holds at least d/2 interactions or is a Strategy-1 singleton.
  Each cluster remembers its warm member (``hint``: a singleton's entity, or one waiting for the
  rest of its cluster to reach d/2), checked again whenever the cluster gains members or
  interactions (other entities may join a singleton by reassignment).
* **Strategy 2.** A cluster with more than 2d interactions whose members all have at most d
  splits in two by GPCA (Eq. 5) on its members' gradients computed from their buffered
  interactions. The threshold δ of Eq. 6 is the usual one (0 on the centred scores, A.3.3) when
  that split is balanced within d; otherwise it is tuned by quickselect to the nearest threshold
  that is (:func:`balanced_split`). Both halves then hold more than d/2 interactions.
* **Priority queue** (A.1): a max-heap of clusters keyed by the split criterion, the number of
  associated interactions ||W S_q(:, k)||_0, with lazy invalidation (an entry whose key is no
  longer the cluster's count is dropped when popped; a cluster is pushed again whenever its count
  changes). Splitting stops when M_q reaches the cap.

d is a constant here (A.1: 100); Section 3.4.4 allows any non-decreasing sublinear d(D).
Shapes: E members of a cluster, R embedding dimension.
"""
from __future__ import annotations

import heapq
from typing import Callable

import numpy as np
import torch

from cel.cluster.split import first_principal_component, normalise, weighted_quickselect

#: record of one split: (strategy, parent, new, parent interactions, new interactions,
#: parent members, new members) after the split
SplitRecord = tuple[int, int, int, int, int, int, int]


def weighted_select(values: np.ndarray, weights: np.ndarray, target: float) -> float:
    """Smallest v with weight{values <= v} >= target (0 < target <= total), by quickselect in
    O(E) expected: :func:`~cel.cluster.split.weighted_quickselect` (the weighted median) on the
    values plus one phantom element at -inf (target below half) or +inf (above half) whose weight
    moves the median to ``target``."""
    total = float(weights.sum())
    extra = abs(total - 2.0 * target)
    if extra == 0.0:
        return weighted_quickselect(values, weights)
    phantom = -np.inf if target < total / 2 else np.inf
    return weighted_quickselect(np.append(values, phantom), np.append(weights, extra))


def balanced_split(scores: torch.Tensor, weights: torch.Tensor, max_gap: float | None = None,
                   preferred: float | None = None) -> torch.Tensor:
    """Eq. 6 under Strategy 2's balance: True = ``scores >= δ`` (the new cluster), where the two
    halves' weights (interaction counts) differ by at most ``max_gap`` (d).

    δ is ``preferred`` (e.g. 0, A.3.3's default for GPCA scores) when that split is balanced
    enough; otherwise it is tuned (Section 3.4.4, footnote 2: by quickselect, O(E)) to the
    weighted quantile at the nearest admissible boundary, (T - d)/2 or (T + d)/2 of the total
    weight T (:func:`weighted_select`). ``preferred=None`` or ``max_gap=None`` asks for the most
    balanced split (the weighted median, target T/2). Members tied at δ are cut in their listed
    order (the threshold is taken on (score, position)). When every weight is at most
    ``max_gap`` (Strategy 1 leaves no member above d) the result always satisfies the bound, and
    both halves then hold more than (T - d)/2 > d/2 when T > 2d.
    """
    s, w = scores.double().numpy(), weights.double().numpy()
    total = w.sum()
    gap = 0.0 if max_gap is None else float(max_gap)
    lo, hi = (total - gap) / 2, (total + gap) / 2                  # admissible weight staying behind
    if preferred is not None and max_gap is not None:
        stay = w[s < preferred].sum()
        if lo <= stay <= hi and 0 < stay < total:
            return torch.as_tensor(s >= preferred)
        target = lo if stay < lo else hi
    else:
        target = total / 2
    target = min(max(target, float(w.min())), total)
    v = weighted_select(s, w, target)
    below, tie = s < v, s == v
    stay = w[below].sum() + np.concatenate([[0.0], np.cumsum(w[tie])])     # (T+1,) staying, t ties kept
    ok = (stay > 0) & (stay < total)
    inside = ok & (stay >= lo - 1e-9) & (stay <= hi + 1e-9)
    cand = np.flatnonzero(ok) if ok.any() else np.arange(len(stay))
    t = int(cand[np.lexsort((np.abs(stay[cand] - target), ~inside[cand]))[0]])   # admissible first, then closest
    move = ~below
    move[np.flatnonzero(tie)[:t]] = False
    return torch.as_tensor(move)


def gpca_split(grads: torch.Tensor, weights: torch.Tensor, max_gap: float, normalize: str = "center",
               delta: str = "zero") -> torch.Tensor:
    """GPCA (Eq. 5) on the members' gradients G (E, R), then Eq. 6 with δ chosen by ``delta``
    (``zero``: 0 on the centred scores, A.3.3's default; ``median``: the scores' median;
    ``balanced``: the weighted median) and tuned into Strategy 2's balance (|diff| <= max_gap)."""
    G = normalise(grads, normalize)
    scores = G @ first_principal_component(G)
    preferred = {"zero": 0.0, "median": float(scores.median()), "balanced": None}[delta]
    return balanced_split(scores, weights, max_gap, preferred)


class SplitQueue:
    """Max-heap of (criterion, cluster) with lazy invalidation (A.1)."""

    def __init__(self):
        self.heap: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, clusters: torch.Tensor, keys: torch.Tensor) -> None:
        for k, key in zip(clusters.tolist(), keys.tolist()):
            heapq.heappush(self.heap, (-key, k))

    def pop(self) -> tuple[int, int]:
        key, k = heapq.heappop(self.heap)
        return k, -key

    def clear(self) -> None:
        self.heap = []


class LiteSplitter:
    """Strategies 1 and 2 on a :class:`~cel.embeddings.cel_lite.CELLiteEmbedding`.

    ``run`` is called after each reassignment with the clusters whose interaction count changed
    and the warm entities of the batch; ``gradients(members, clusters)`` (E, R) supplies Eq. 5's
    g_j = -∂L/∂B(j,:) from the buffered interactions of members (E,) of clusters (E,);
    ``count_of(entities)`` (E,) gives the entities' interaction counts. The state (queue, warm
    members) is plain attributes, so that it is checkpointed with the schedule that owns it.
    """

    def __init__(self, d: int, normalize: str = "center", delta: str = "zero"):
        self.d, self.normalize, self.delta = d, normalize, delta
        self.queue = SplitQueue()
        self.hint = torch.full((1,), -1, dtype=torch.int64)     # (K,) a warm member of each cluster, -1 if none
        self.members_read = 0                                   # members listed by Strategy 2 (cost counter)

    # -- helpers -------------------------------------------------------------------------------
    def _hints(self, emb) -> torch.Tensor:
        if len(self.hint) < len(emb.live):
            self.hint = torch.cat([self.hint, torch.full((len(emb.live) - len(self.hint),), -1, dtype=torch.int64)])
        return self.hint

    def _valid_hint(self, emb, clusters: torch.Tensor, count_of) -> torch.Tensor:
        """(T,) True where cluster's pending warm member is still warm and still there."""
        w = self._hints(emb)[clusters]
        ok = w >= 0
        wc = w.clamp_min(0)
        return ok & (emb._assign[wc] == clusters) & (count_of(wc) > self.d)

    def _push(self, emb, clusters: torch.Tensor, count_of) -> None:
        """Queue the clusters that Strategy 2 may split: > 2d interactions, >= 2 members, and no
        pending warm member."""
        if len(clusters) == 0:
            return
        clusters = torch.unique(clusters)
        key = emb.interactions[clusters]
        ok = emb.live[clusters] & (key > 2 * self.d) & (emb.sizes[clusters] >= 2)
        ok &= ~self._valid_hint(emb, clusters, count_of)
        self.queue.push(clusters[ok], key[ok])

    # -- the two strategies ----------------------------------------------------------------------
    def run(self, emb, touched: torch.Tensor, warm: torch.Tensor, count_of: Callable[[torch.Tensor], torch.Tensor],
            gradients: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> list[SplitRecord]:
        """Strategy 1, then Strategy 2 until the queue is empty or M_q reaches the cap. At the cap
        the touched clusters are still queued (a freed row, or a growing cap, resumes the splits);
        stale entries are dropped by rebuilding the queue once it holds 4x the clusters (O(1)
        amortised per push)."""
        records: list[SplitRecord] = []
        if emb.n_clusters < emb.max_clusters:
            touched = torch.cat([touched, self.strategy1(emb, touched, warm, count_of, records)])
        self._push(emb, touched, count_of)
        self.strategy2(emb, count_of, gradients, records)
        if len(self.queue) > 4 * emb.n_clusters + 64:
            self.queue.clear()
            self._push(emb, emb.live_clusters(), count_of)
        return records

    def strategy1(self, emb, touched: torch.Tensor, warm: torch.Tensor, count_of, records: list) -> torch.Tensor:
        """Give each warm entity (> d interactions) not alone in its cluster a cluster of its own,
        once the rest keeps >= d/2 interactions. Candidates: the batch's warm entities and the
        warm members remembered for the touched clusters. Vectorised over the candidates: in each
        cluster they leave in id order while the rest keeps >= d/2 interactions and >= 1 member
        (both shrink with every departure, so the ones that leave are a prefix). Returns the
        parents split."""
        d, hint = self.d, self._hints(emb)
        touched = torch.unique(touched)
        pend = hint[touched][self._valid_hint(emb, touched, count_of)]
        cand = torch.unique(torch.cat([warm, pend]))                       # sorted ids
        c = count_of(cand)
        cand, c = cand[c > d], c[c > d]
        if len(cand) == 0:
            return cand
        order = torch.sort(emb._assign[cand], stable=True).indices          # by cluster, then id
        cand, c = cand[order], c[order]
        k = emb._assign[cand]
        uniq, per = torch.unique_consecutive(k, return_counts=True)
        first = torch.cumsum(per, 0) - per
        rank = torch.arange(len(k)) - torch.repeat_interleave(first, per)
        cs = torch.cumsum(c, 0)
        left = cs - torch.repeat_interleave(cs[first] - c[first], per)   # warm interactions gone, this one included
        ok = (2 * (emb.interactions[k] - left) >= d) & (emb.sizes[k] - rank - 1 >= 1)
        take = torch.nonzero(ok).squeeze(1)[: max(0, emb.max_clusters - emb.n_clusters)]
        taken = torch.zeros(len(k), dtype=torch.bool)
        taken[take] = True
        waiting = torch.full((len(uniq),), len(k), dtype=torch.int64).scatter_reduce_(
            0, torch.repeat_interleave(torch.arange(len(uniq)), per), torch.where(taken, len(k), torch.arange(len(k))),
            reduce="amin")                                                   # first warm member staying
        stays = waiting < len(k)
        hint[uniq[stays]] = cand[waiting[stays]]       # checked again when the cluster gains members or interactions
        if len(take) == 0:
            return take
        parents = k[take]
        new = emb.split_off_each(parents, cand[take], c[take])
        hint = self._hints(emb)                        # (the table may have grown)
        hint[new] = cand[take]                         # a Strategy-1 singleton: watched for joiners
        inter, sizes = emb.interactions, emb.sizes
        records.extend(zip([1] * len(take), parents.tolist(), new.tolist(), inter[parents].tolist(),
                           inter[new].tolist(), sizes[parents].tolist(), sizes[new].tolist()))
        return torch.unique(parents)

    def strategy2(self, emb, count_of, gradients, records: list) -> None:
        """Split the clusters with the most interactions, by GPCA with Strategy 2's δ, in rounds:
        each round pops every valid queued cluster (as many as the cap leaves room for, largest
        first) and computes all their members' gradients in one batch; the halves that still
        have more than 2d interactions are queued for the next round."""
        d = self.d
        while len(self.queue) and emb.n_clusters < emb.max_clusters:
            batch: list[int] = []
            while len(self.queue) and len(batch) < emb.max_clusters - emb.n_clusters:
                k, key = self.queue.pop()
                if (k in batch or not bool(emb.live[k]) or int(emb.interactions[k]) != key or key <= 2 * d
                        or int(emb.sizes[k]) < 2):
                    continue                                   # stale entry
                batch.append(k)
            if not batch:
                return
            members = [emb.members(k) for k in batch]
            sizes = torch.tensor([len(m) for m in members])
            flat = torch.cat(members)
            c = count_of(flat)
            self.members_read += len(flat)
            heaviest = torch.zeros(len(batch), dtype=torch.int64).scatter_reduce_(
                0, torch.repeat_interleave(torch.arange(len(batch)), sizes), c, reduce="amax")
            grads = gradients(flat, torch.repeat_interleave(torch.tensor(batch), sizes))   # (E, R)
            if not bool(torch.isfinite(grads).all()):
                raise FloatingPointError(f"non-finite gradients in a split of clusters {batch}: lower train.lr")
            parents, movers, moved = [], [], []
            for k, m, g, cm, top in zip(batch, members, grads.split(sizes.tolist()), c.split(sizes.tolist()),
                                        heaviest.tolist()):
                if top > d:                                    # a warm member waits for Strategy 1
                    self._hints(emb)[k] = m[int(cm.argmax())]
                    continue
                to_new = gpca_split(g, cm, d, self.normalize, self.delta)
                parents.append(k)
                movers.append(m[to_new])
                moved.append(cm[to_new])
            if not parents:
                continue
            parents_t = torch.tensor(parents)
            new = emb.split_off_each(parents_t, movers, moved)
            inter, sz = emb.interactions, emb.sizes
            records.extend(zip([2] * len(parents), parents, new.tolist(), inter[parents_t].tolist(),
                               inter[new].tolist(), sz[parents_t].tolist(), sz[new].tolist()))
            self._push(emb, torch.cat([parents_t, new]), count_of)


__all__ = ["LiteSplitter", "SplitQueue", "SplitRecord", "balanced_split", "gpca_split", "weighted_select"]
