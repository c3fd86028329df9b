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
K = M_q are the two rows of Tables 2 and 7 (``top_k``: 0 means M_q).

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

Stored at test time: the M_q bucket rows; the anchor -> bucket map (M_q ids); per non-anchor
entity its K bucket ids and K weights (K = M_q: the M_q weights, no ids needed), so
``index_entries()`` is M_q + (M - M_q)·2K, or M_q + (M - M_q)·M_q for K = M_q. With K = M_q this
exceeds a full table once M_q > R (ML-100k at 5%: 84 weights per item against R = 64): the
table shows the real stored size beside the nominal ratio.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, TrainingData, init_vectors


@dataclass(frozen=True)
class PreHashParams(MethodParams):
    top_k: int = 0              # K buckets per non-anchor entity; 0 = M_q (all buckets)
    logit_scale: float = 10.0   # z = scale · θ: the hash weights' step is scale² times the lr
    logit_init: float = 0.01    # std of the initial logits z
    grad_avg: bool = True       # divide a bucket's gradient by its (soft) usage, Eq. 7

    def __post_init__(self):
        super().__post_init__()
        if self.top_k < 0 or self.logit_scale <= 0 or self.logit_init < 0:
            raise ConfigError("config invalid value at 'method': top_k >= 0, logit_scale > 0, logit_init >= 0")


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
        self.theta = nn.Parameter(z / params.logit_scale)                            # (M, M_q)
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

    def anchors(self) -> torch.Tensor:
        """(M_q,) the anchor entity of each bucket."""
        ids = torch.nonzero(self.anchor_bucket >= 0).squeeze(1)
        return ids[torch.argsort(self.anchor_bucket[ids])]

    # -- the embedding ---------------------------------------------------------------------------
    def mixture(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bucket ids (..., K), weights (..., K)) of ``ids``; an anchor has its own bucket with
        weight 1 (in slot 0, the other slots weight 0)."""
        z = self.params.logit_scale * self.theta[ids]                                # (..., M_q)
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

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.k == self.buckets:
            # K = M_q: the mixture of each distinct id as one (U, M_q) @ (M_q, R) product, no
            # (..., M_q, R) gather (a DIN batch looks up B x H history ids)
            uniq, inverse = torch.unique(ids, return_inverse=True)
            w = torch.softmax(self.params.logit_scale * self.theta[uniq], dim=-1)      # (U, M_q)
            anchor = self.anchor_bucket[uniq]
            w = torch.where((anchor >= 0)[:, None],
                            nn.functional.one_hot(anchor.clamp_min(0), self.buckets).to(w.dtype), w)
            return (w @ self.weight)[inverse]                                          # (..., R)
        idx, w = self.mixture(ids)
        return (w.unsqueeze(-1) * self.weight[idx]).sum(dim=-2)                      # (..., R)

    def table(self) -> torch.Tensor:
        """(M, R) every entity's mixture. Also keeps the buckets' usage of these weights, which
        gradient averaging needs after this very forward pass (``row_usage``)."""
        if self.k < self.buckets:
            idx, w = self.mixture(torch.arange(self.num_entities))                 # (M, K) each
            out = (w.unsqueeze(-1) * self.weight[idx]).sum(dim=-2)
        else:   # K = M_q: one (M, M_q) @ (M_q, R) product instead of an (M, M_q, R) gather
            w = torch.softmax(self.params.logit_scale * self.theta, dim=-1)
            anchor = self.anchor_bucket >= 0
            w = torch.where(anchor[:, None], nn.functional.one_hot(self.anchor_bucket.clamp_min(0),
                                                                   self.buckets).to(w.dtype), w)
            idx, out = None, w @ self.weight
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
        cached = getattr(self, "_usage", None)
        if cached is not None and cached[0] == self.theta._version:
            return [self.weight], cached[1]
        idx, w = self.mixture(torch.arange(self.num_entities))
        return [self.weight], self._usage_of(idx, w)
