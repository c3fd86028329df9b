"""CERP: Compositional Embedding with Regularized Pruning baseline.

Liang, Chen, Nguyen, Li, Yin. "Learning Compact Compositional Embeddings via Regularized Pruning
for Recommendation", ICDM 2023 (arXiv 2309.03518; abstract in shared/paper/related-abstracts.md).

Composition: two meta-embedding tables P, Q of b rows each (b = ceil(sqrt(M)) by default);
entity x is P[x mod b] + Q[x div c] with c = ceil(M/b). Both indices are < b for every x < M
(c·b >= M), and no two entities share the pair: same (x div c) means |x - y| < c, same (x mod b)
means b divides |x - y|, impossible when c <= b, which b >= ceil(sqrt(M)) guarantees (b < that
is rejected).

Pruning, "jointly pruned via a learnable element-wise threshold" (the abstract): each table
W in {P, Q} has a threshold parameter s of the same shape (b, R), and the effective table is the
soft-threshold W_eff = sign(W) · relu(|W| - sigmoid(s)). s starts at ``threshold_init``
(sigmoid ≈ 0.007 by default: nearly no pruning, yet a usable gradient for s). ``penalty()``
is λ_prune · Σ|W_eff| over both tables while the number of nonzeros exceeds the budget
M_q · R (None once it is within): it shrinks |W| and raises the thresholds, so entries fall
to exactly zero. The "regularized" part of CERP, which makes the two sparsified tables
complementary, is λ_comp · Σ_{x,d} (1 - tanh²(K · e_xd)) / M on the composed embeddings e
(small when, for each entity and dimension, at least one of P, Q still carries a value);
it is the constant shift of the -||tanh(K e)||² form used by public CERP code, so it has the
same gradient and keeps the penalty >= 0. It is off by default (λ_comp = 0): its weight was not
tuned here and it works against pruning.

The penalty alone need not reach the budget within the training steps; ``finalize()`` hard-prunes
to it (keeps the largest |W_eff| entries, at most M_q · R of both tables, through a mask
buffer, so later steps cannot revive them). The trainer does not call ``finalize()`` yet: the
caller must, before evaluating the compressed model.

Nonnegativity (NMF): the trainer applies abs to ``constrained_parameters()``, which here are P and
Q only. With W >= 0, W_eff = relu(W - sigmoid(s)) >= 0, so the constraint still holds for the
embeddings, and the soft-threshold only looks at |W| anyway, so abs does not undo pruning. The
thresholds s must NOT be abs'ed: a negative s (small threshold) would become a large positive
one and prune almost everything.

Stored at test time: the nonzeros of P_eff and Q_eff in a sparse format. ``embedding_rows()``
reports ceil(nonzeros / R), i.e. the nonzeros counted in rows of R numbers (the sparse
format's position indices are not counted, as in the CERP/PEP parameter counts);
``dense_rows()`` = 2b is the size before pruning. No index is stored (x mod b, x div c are
computed). No gradient averaging (two tables, ``shared_rows()`` is None).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cel.config import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


@dataclass(frozen=True)
class CERPParams(MethodParams):
    buckets: int = 0                 # b rows per meta table; 0: ceil(sqrt(M)) (must be >= that)
    threshold_init: float = -5.0     # initial s; threshold sigmoid(s)
    lambda_prune: float = 1.0        # weight of Σ|W_eff| while above the budget (not tuned)
    lambda_comp: float = 0.0         # weight of the complementarity regulariser (off by default)
    comp_scale: float = 100.0        # K in tanh(K e)


class CERPEmbedding(EmbeddingMethod):
    Params = CERPParams

    def __init__(self, num_entities, dim, compression, params: CERPParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        least = math.isqrt(max(num_entities - 1, 0)) + 1 if num_entities > 1 else 1   # ceil(sqrt(M))
        b = params.buckets or least
        if not least <= b <= max(num_entities, 1):
            raise ConfigError(f"config invalid value at 'method.buckets': expected 0 or {least}..{num_entities}, got {b}")
        self.buckets = b
        self.stride = -(-num_entities // b)                                   # c = ceil(M/b)
        self.P = nn.Parameter(init_vectors(b, dim, generator))                # (b, R)
        self.Q = nn.Parameter(init_vectors(b, dim, generator))                # (b, R)
        self.sP = nn.Parameter(torch.full((b, dim), float(params.threshold_init)))
        self.sQ = nn.Parameter(torch.full((b, dim), float(params.threshold_init)))
        self.register_buffer("keepP", torch.ones(b, dim))                     # finalize() masks
        self.register_buffer("keepQ", torch.ones(b, dim))
        ids = torch.arange(num_entities)
        self.register_buffer("rowP", ids % b)                                 # (M,) x mod b
        self.register_buffer("rowQ", ids // self.stride)                      # (M,) x div c

    # --- effective (pruned) tables -------------------------------------------------------------
    @staticmethod
    def _soft(w, s, keep):
        return torch.sign(w) * torch.relu(w.abs() - torch.sigmoid(s)) * keep

    def effective_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._soft(self.P, self.sP, self.keepP), self._soft(self.Q, self.sQ, self.keepQ)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        p, q = self.effective_tables()
        return p[self.rowP[ids]] + q[self.rowQ[ids]]

    # --- budget and size -----------------------------------------------------------------------
    def budget_entries(self) -> int:
        """M_q · R: nonzeros allowed at test time."""
        return self.budget_rows() * self.dim

    def nonzeros(self) -> int:
        with torch.no_grad():
            p, q = self.effective_tables()
            return int((p != 0).sum() + (q != 0).sum())

    def dense_rows(self) -> int:
        """2b: the rows of both meta tables before pruning."""
        return 2 * self.buckets

    def embedding_rows(self) -> int:
        """ceil(nonzeros / R), at least 1: the sparse tables counted in rows of R numbers."""
        return max(1, -(-self.nonzeros() // self.dim))

    def index_entries(self) -> int:
        return 0

    def constrained_parameters(self) -> list[nn.Parameter]:
        """P and Q only: abs on the thresholds would turn a small threshold into a huge one."""
        return [self.P, self.Q]

    # --- training terms ------------------------------------------------------------------------
    def penalty(self) -> torch.Tensor | None:
        lp, lc = self.params.lambda_prune, self.params.lambda_comp
        terms = []
        p, q = self.effective_tables()
        if lp > 0 and self.nonzeros() > self.budget_entries():
            terms.append(lp * (p.abs().sum() + q.abs().sum()))
        if lc > 0:
            e = p[self.rowP] + q[self.rowQ]                                     # (M, R)
            terms.append(lc * (1 - torch.tanh(self.params.comp_scale * e).pow(2)).sum() / self.num_entities)
        return sum(terms) if terms else None

    @torch.no_grad()
    def finalize(self) -> int:
        """Hard prune to the budget: keep the largest |W_eff| of both tables, at most M_q·R of them
        (nonzeros only). Returns the nonzeros left. Not called by the trainer yet."""
        p, q = self.effective_tables()
        mags = torch.cat([p.abs().flatten(), q.abs().flatten()])
        k = min(self.budget_entries(), int((mags > 0).sum()))
        keep = torch.zeros_like(mags)
        if k > 0:
            keep[torch.topk(mags, k).indices] = 1.0
        n = p.numel()
        self.keepP.mul_(keep[:n].view_as(p))
        self.keepQ.mul_(keep[n:].view_as(q))
        return self.nonzeros()
