"""PreHash (preference hash) baseline.

Shi, Ma, Zhang, Zhang, Yu, Shan, Liu, Ma. "Beyond User Embedding Matrix: Learning to Hash for
Modeling Large-Scale Users in Recommendation", SIGIR 2020, 319-328 (the CEL paper's [16]).

Mechanism: M_q buckets with an embedding each. The M_q warmest entities are anchors, each bound
to its own bucket (its embedding is that bucket's row). Every other entity is a mixture of its
top-K buckets: e_j = Σ_{k in topK(j)} softmax_k(z_j) · C(k,:), softmax over the K selected
logits only. With K = M_q the mixture spans every bucket.

The CEL paper's adaptation for rating prediction with NMF (Appendix D.1): "we do not use the
historical interactions of users while hashing. Instead, we learn the hash assignment (weights
associated with each bucket) during training", so the logits z (M, M_q) are free parameters
learned with everything else (the original computes them from the user's history). K = 4 and
K = M_q are the two rows of Tables 2 and 7 (``top_k``: 0 means M_q). That is ``weights: learned``
(the default; Tables 2 and 7).

``weights: history`` is the original's hashing, which D.1 prescribes for the online conversion
protocol (Table 3): "we follow the original setting [16] and use the user history to calculate the
hash assignment (weights associated with each bucket): We collect and update the user history after
receiving the streamed online data ... The same operation is applied to items". Entity j's logits
are the similarity of its history to each bucket,

    z_jk = ``history_scale`` · cos(h_j, C(k,:)),   h_j = mean of the other side's embeddings of the
                                                   interactions j has in the feed's replay buffer,

then the same top-K softmax (anchors keep their own bucket). A user's history is the items it
interacted with (looked up through the item embedding method), an item's the users. There are no
hash parameters: the bucket rows C are the only parameters, and the gradient reaches them through
the mixture and through the logits. h_j is refreshed by the trainer callback :class:`PreHashHistory`
after every step for the entities of the step's new interactions (the ones whose buffer changed):
their <= n buffered interactions, O(b · n · R) per step; until then h_j = 0 (no history yet: a
uniform mixture). Only what the stream has delivered so far enters h_j (the batch being trained
is buffered after its step), so progressive and validation scores never see the future. The anchors
are still the warmest entities of the whole training part (Section 4.1.2: "we thus allow it to go
through all data to find the warmest users before the online training").

Details not fixed by the papers, chosen here:
* warmth = training interactions of the entity (the ``DataAware`` hook; ties by smaller id);
  the warmest gets bucket 0. Before ``fit_data`` the anchors are ids 0..M_q-1.
* logits start at ``logit_init`` · N(0, 1) (near-uniform mixtures, random top-K sets), and are
  stored as z = ``logit_scale`` · θ with θ the parameter: with the run's plain GD at lr 1e-4 the
  logits would barely move (the scale multiplies their effective step by ``logit_scale``²).
* gradient averaging (Eq. 7, ``grad_avg``) divides a bucket's gradient by its usage, the summed
  mixture weights of all entities on it (1 per anchor), the soft version of Modulo's count.
* NMF's nonnegativity (abs) applies to the buckets only; a softmax mixture of nonnegative rows is
  nonnegative.
* history weights: every buffered interaction is history, whatever its label (as DIN's history);
  the bucket's own row C(k,:) is its hash vector (the papers fix no other; an anchor's row is the
  anchor's embedding); the other side's embeddings are read when h_j is refreshed (detached: h_j
  is data, not a parameter). Gradient averaging's usage is kept incrementally: each entity's weights
  as of its last refresh, so a step costs O(batch), not O(M · M_q). The initial logits are drawn
  from the generator in both modes (discarded in history mode), so both modes leave the same
  random state to what is built after them.

Stored at test time: the M_q bucket rows; the anchor -> bucket map (M_q ids); per non-anchor
entity its K bucket ids and K weights (K = M_q: the M_q weights, no ids needed), so
``index_entries()`` is M_q + (M - M_q)·2K, or M_q + (M - M_q)·M_q for K = M_q. With K = M_q this
exceeds a full table once M_q > R (ML-100k at 5%: 84 weights per item against R = 64): the
table shows the real stored size beside the nominal ratio. History weights are counted the same
(the weights a deployment keeps per entity, or recomputes from the history it stores).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, TrainingData, init_vectors

WEIGHTS = ("learned", "history")


@dataclass(frozen=True)
class PreHashParams(MethodParams):
    top_k: int = 0              # K buckets per non-anchor entity; 0 = M_q (all buckets)
    logit_scale: float = 10.0   # z = scale · θ: the hash weights' step is scale² times the lr
    logit_init: float = 0.01    # std of the initial logits z
    grad_avg: bool = True       # divide a bucket's gradient by its (soft) usage, Eq. 7
    weights: str = "learned"    # learned: free logits (D.1, Tables 2, 7); history: from the history (D.1, Table 3)
    history_scale: float = 10.0  # history: z_jk = history_scale · cos(h_j, C(k,:))

    def __post_init__(self):
        super().__post_init__()
        if self.top_k < 0 or self.logit_scale <= 0 or self.logit_init < 0 or self.history_scale <= 0:
            raise ConfigError("config invalid value at 'method': top_k >= 0, logit_scale > 0, logit_init >= 0, "
                              "history_scale > 0")
        if self.weights not in WEIGHTS:
            raise ConfigError(f"config invalid value at 'method.weights': {self.weights!r} "
                              f"(allowed: {', '.join(WEIGHTS)})")


def warmest_first(counts: torch.Tensor) -> torch.Tensor:
    """(M,) entity ids by training interactions, descending; ties by the smaller id."""
    return torch.argsort(-counts.reshape(-1).to(torch.long), stable=True)


class PreHashEmbedding(EmbeddingMethod):
    Params = PreHashParams

    def __init__(self, num_entities, dim, compression, params: PreHashParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        self.buckets = self.budget_rows()                                            # M_q
        self.k = min(params.top_k or self.buckets, self.buckets)                     # K
        self.weight = nn.Parameter(init_vectors(self.buckets, dim, generator, params.init_scale))      # (M_q, R)
        z = params.logit_init * torch.randn(num_entities, self.buckets, generator=generator)
        self.history_weights = params.weights == "history"
        if self.history_weights:        # z drawn all the same: the same random state follows in both modes
            self.register_parameter("theta", None)
            self.register_buffer("history", torch.zeros(num_entities, dim))                 # h_j (M, R)
            self.register_buffer("history_len", torch.zeros(num_entities, dtype=torch.long))  # slots in h_j
            self.register_buffer("_hist_idx", torch.zeros(num_entities, self.k, dtype=torch.long), persistent=False)
            self.register_buffer("_hist_w", torch.zeros(num_entities, self.k), persistent=False)
            self.register_buffer("_hist_usage", torch.zeros(self.buckets), persistent=False)
            self.history_attached = False   # set by PreHashHistory (or ``observe``): a trainer feeds h_j
        else:
            self.theta = nn.Parameter(z / params.logit_scale)                        # (M, M_q)
        self.register_buffer("anchor_bucket", torch.full((num_entities,), -1, dtype=torch.long))
        self.set_anchors(torch.arange(num_entities))

    # -- anchors ---------------------------------------------------------------------------------
    def fit_data(self, data: TrainingData) -> None:
        """DataAware hook: the M_q warmest entities of the training fold become the anchors."""
        if data.num_entities != self.num_entities:
            raise ValueError(f"training data has {data.num_entities} entities, the method {self.num_entities}")
        self.set_anchors(warmest_first(data.counts()))

    def set_anchors(self, order: torch.Tensor) -> None:
        """Bind the first M_q ids of ``order`` to buckets 0..M_q-1 (the first to bucket 0)."""
        top = order[: self.buckets]
        self.anchor_bucket.fill_(-1)
        self.anchor_bucket[top] = torch.arange(top.numel())
        self._usage = None                      # usage of the old anchors is stale
        if self.history_weights:
            self._refresh_usage(torch.arange(self.num_entities), reset=True)

    def anchors(self) -> torch.Tensor:
        """(M_q,) the anchor entity of each bucket."""
        ids = torch.nonzero(self.anchor_bucket >= 0).squeeze(1)
        return ids[torch.argsort(self.anchor_bucket[ids])]

    # -- history weights -------------------------------------------------------------------------
    @torch.no_grad()
    def observe(self, entities: torch.Tensor, other: torch.Tensor, valid: torch.Tensor) -> None:
        """History mode: set h_j of ``entities`` (E,) (distinct ids) from their history, the other
        side's embeddings ``other`` (E, n, R) of their buffered interactions, ``valid`` (E, n) the
        real slots: h_j = their mean (0 without any). Their share of the bucket usage follows."""
        if not self.history_weights:
            raise TypeError("observe() is for PreHash with weights: history")
        n = valid.sum(1)
        mask = valid.unsqueeze(-1).to(other.dtype)
        self.history[entities] = (other * mask).sum(1) / n.clamp_min(1).unsqueeze(-1).to(other.dtype)
        self.history_len[entities] = n
        self.history_attached = True
        self._refresh_usage(entities)

    @torch.no_grad()
    def _refresh_usage(self, entities: torch.Tensor, reset: bool = False) -> None:
        """History mode: replace the usage share of ``entities`` by their current weights."""
        if reset:
            self._hist_usage.zero_()
        else:
            self._hist_usage.index_add_(0, self._hist_idx[entities].reshape(-1), -self._hist_w[entities].reshape(-1))
        idx, w = self.mixture(entities)
        self._hist_idx[entities], self._hist_w[entities] = idx, w
        self._hist_usage.index_add_(0, idx.reshape(-1), w.reshape(-1))

    def logits(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """(..., M_q) hash logits z of ``ids`` (None: every entity): the learned ones, or the
        similarity of the entity's history to each bucket row."""
        if not self.history_weights:
            return self.params.logit_scale * (self.theta if ids is None else self.theta[ids])
        h = self.history if ids is None else self.history[ids]
        c = nn.functional.normalize(self.weight, dim=-1)
        return self.params.history_scale * (nn.functional.normalize(h, dim=-1) @ c.T)

    # -- the embedding ---------------------------------------------------------------------------
    def mixture(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bucket ids (..., K), weights (..., K)) of ``ids``; an anchor has its own bucket with
        weight 1 (in slot 0, the other slots weight 0)."""
        z = self.logits(ids)                                                         # (..., M_q)
        if self.k < self.buckets:
            z, idx = torch.topk(z, self.k, dim=-1)                                  # (..., K)
        else:
            idx = torch.arange(self.buckets).expand_as(z)
        w = torch.softmax(z, dim=-1)
        anchor = self.anchor_bucket[ids]
        is_anchor = (anchor >= 0).unsqueeze(-1)
        one_hot = torch.zeros_like(w)
        one_hot[..., 0] = 1.0
        a_idx = idx.clone()
        a_idx[..., 0] = anchor.clamp_min(0)
        return torch.where(is_anchor, a_idx, idx), torch.where(is_anchor, one_hot, w)

    def _check_fed(self) -> None:
        if self.history_weights and self.training and not self.history_attached:
            raise RuntimeError("PreHash with weights: history trains only with its history fed (the trainer "
                               "callback cel.embeddings.prehash.PreHashHistory on the 'replay' feed)")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self._check_fed()
        if self.k == self.buckets:
            # K = M_q: the mixture of each distinct id as one (U, M_q) @ (M_q, R) product, no
            # (..., M_q, R) gather (a DIN batch looks up B x H history ids)
            uniq, inverse = torch.unique(ids, return_inverse=True)
            w = torch.softmax(self.logits(uniq), dim=-1)                               # (U, M_q)
            anchor = self.anchor_bucket[uniq]
            w = torch.where((anchor >= 0)[:, None],
                            nn.functional.one_hot(anchor.clamp_min(0), self.buckets).to(w.dtype), w)
            return (w @ self.weight)[inverse]                                          # (..., R)
        idx, w = self.mixture(ids)
        return (w.unsqueeze(-1) * self.weight[idx]).sum(dim=-2)                      # (..., R)

    def table(self) -> torch.Tensor:
        """(M, R) every entity's mixture. Also keeps the buckets' usage of these weights, which
        gradient averaging needs after this very forward pass (``row_usage``)."""
        self._check_fed()
        if self.k < self.buckets:
            idx, w = self.mixture(torch.arange(self.num_entities))                 # (M, K) each
            out = (w.unsqueeze(-1) * self.weight[idx]).sum(dim=-2)
        else:   # K = M_q: one (M, M_q) @ (M_q, R) product instead of an (M, M_q, R) gather
            w = torch.softmax(self.logits(), dim=-1)
            anchor = self.anchor_bucket >= 0
            w = torch.where(anchor[:, None], nn.functional.one_hot(self.anchor_bucket.clamp_min(0),
                                                                   self.buckets).to(w.dtype), w)
            idx, out = None, w @ self.weight
        if not self.history_weights:        # history mode keeps its usage incrementally
            self._usage = (self.theta._version, self._usage_of(idx, w.detach()))
        return out

    def _usage_of(self, idx: torch.Tensor | None, w: torch.Tensor) -> torch.Tensor:
        """(M_q,) Σ_j w_jk for weights w (M, K) on buckets idx (None: all M_q buckets)."""
        if idx is None:
            return w.sum(0)
        return torch.zeros(self.buckets, dtype=w.dtype).index_add_(0, idx.reshape(-1), w.reshape(-1))

    # -- sizes and training hooks ------------------------------------------------------------------
    def embedding_rows(self) -> int:
        return self.buckets

    def index_entries(self) -> int:
        others = self.num_entities - int((self.anchor_bucket >= 0).sum())
        per_entity = self.buckets if self.k == self.buckets else 2 * self.k
        return self.buckets + others * per_entity

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The buckets only: neither abs nor the norm regulariser applies to the hash logits."""
        return [self.weight]

    @torch.no_grad()
    def row_usage(self):
        """Soft usage of each bucket: Σ_j w_jk (anchors count 1 on their own bucket); taken from
        the last ``table()`` while the logits are unchanged since (the trainer's step order)."""
        if not self.params.grad_avg:
            return None
        if self.history_weights:            # each entity's weights as of its last history refresh
            return [self.weight], self._hist_usage.clone()
        cached = getattr(self, "_usage", None)
        if cached is not None and cached[0] == self.theta._version:
            return [self.weight], cached[1]
        idx, w = self.mixture(torch.arange(self.num_entities))
        return [self.weight], self._usage_of(idx, w)


class PreHashHistory:
    """Trainer callback (the :class:`cel.train.trainer.Callback` events; as CEL-Lite's
    ``LiteSchedule``, it reads the ``replay`` feed's buffers) feeding ``weights: history``.

    ``on_step_end`` (after the step on a batch, which the feed has already buffered): for each
    side in ``sides``, the distinct entities of the batch's new interactions get h_j from their
    <= n buffered interactions, embedded by the other side's embedding method. Both sides read the
    embeddings as they are after the step, before either side's h_j changes (a user's refresh does
    not depend on the items' refresh of the same step, nor the reverse). O(b · n · R) per step.
    The run driver adds it when a side is PreHash with history weights (``for_embeddings``).
    """

    def __init__(self, sides: tuple[str, ...] = ("user", "item")):
        if not sides or any(s not in ("user", "item") for s in sides):
            raise ValueError(f"sides must be among user, item: {sides!r}")
        self.sides = tuple(sides)
        self.refreshed = 0                   # entity refreshes so far (for the O(batch) check)

    @classmethod
    def for_embeddings(cls, user_emb, item_emb) -> list["PreHashHistory"]:
        """[the callback for the sides whose embedding is PreHash with ``weights: history``], or []."""
        sides = tuple(side for side, e in (("user", user_emb), ("item", item_emb))
                      if isinstance(e, PreHashEmbedding) and e.history_weights)
        return [cls(sides)] if sides else []

    @staticmethod
    def emb(t, side: str):
        return t.user_emb if side == "user" else t.item_emb

    @staticmethod
    def other(t, side: str):
        return t.item_emb if side == "user" else t.user_emb

    def on_fit_start(self, t) -> None:
        if not hasattr(t.feed, "buffer"):
            raise ConfigError("PreHash weights: history needs a feed with replay buffers (the 'replay' feed)")
        for side in self.sides:
            e = self.emb(t, side)
            if not (isinstance(e, PreHashEmbedding) and e.history_weights):
                raise TypeError(f"PreHashHistory: the {side} side is not PreHash with weights: history")
            if self.other(t, side).dim != e.dim:
                raise ConfigError(f"PreHash weights: history compares {side} buckets with the other side's "
                                  f"embeddings: dimensions {e.dim} and {self.other(t, side).dim} differ")
            e.history_attached = True

    def on_after_backward(self, t) -> None: ...

    @torch.no_grad()
    def on_step_end(self, t) -> None:
        batch = t.batch
        fresh = getattr(batch, "fresh", len(batch))
        reads = []
        for side in self.sides:                  # read both sides first, then write
            entities = torch.unique((batch.users if side == "user" else batch.items)[:fresh])
            _, other, _, valid = t.feed.buffer.padded(side, entities)        # (E, n) each
            reads.append((side, entities, self.other(t, side)(other), valid))
        for side, entities, vectors, valid in reads:
            self.emb(t, side).observe(entities, vectors, valid)
            self.refreshed += len(entities)

    def on_eval(self, t, metrics: dict) -> None: ...

    def on_fit_end(self, t) -> None: ...

    def ready(self, t) -> bool:
        return True
