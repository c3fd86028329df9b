"""CERP: Compositional Embedding with Regularized Pruning baseline.

Liang, Chen, Nguyen, Li, Yin. "Learning Compact Compositional Embeddings via Regularized Pruning
for Recommendation", ICDM 2023 (arXiv 2309.03518; abstract in shared/paper/related-abstracts.md).

Composition: two meta-embedding tables P, Q of b rows each (b = ceil(sqrt(M)) by default);
entity x is P[x mod b] + Q[x div c] with c = ceil(M/b). They are stored stacked as one (2b, R)
table (P = rows 0..b-1, Q = rows b..2b-1) with two rows per entity, the layout BH uses too.
Both indices are < b for every x < M
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

Schedule (the prune-then-retrain of CERP/PEP-style pruning; a ``StepAware`` hook): phase 1
trains with the soft threshold and the penalty; as soon as the nonzeros fit the budget, or at
step ``finalize_at`` at the latest, ``finalize()`` hard-prunes to the budget (keeps the largest
|W_eff| entries, at most M_q · R of both tables, through a mask buffer, so later steps cannot
revive them), and phase 2 retrains the kept entries. Validation selects a step only in phase 2
(``selectable()``). With the run's plain GD at lr 1e-4 a threshold s would barely move (its
gradient carries sigmoid'(s) ≈ 0.007 at the start), so s = ``threshold_scale`` · θ with θ the
parameter (the scale multiplies its effective step by ``threshold_scale``²). In ``eval()``
mode (the trainer and the run driver evaluate under ``test_time``) the tables are pruned to the
budget in the same way even before ``finalize()``, so what is evaluated is always what would be
stored.

Defaults (``lambda_prune`` 1000, ``threshold_scale`` 10, ``finalize_at`` 1000) were chosen on the
validation slice of ML-100k fold 0 at 5/1/0.5% over lambda_prune {0, 10, 100, 1000, 3000, 10000}
and threshold_scale {1, 10, 30, 100}: with scale 100 the thresholds outrun the data in the first
steps (initial NMF predictions overshoot the ratings) and prune every entry (test MSE 6.4); with
lambda_prune <= 100 the soft pruning does not reach the budget by step 1000 and the hard pruning
then removes entries still in use (1% fold 0: 1.18 against 1.13 with 1000).

Nonnegativity (NMF): the trainer applies abs to ``embedding_parameters()``, which here are P and
Q only. With W >= 0, W_eff = relu(W - sigmoid(s)) >= 0, so the constraint still holds for the
embeddings, and the soft-threshold only looks at |W| anyway, so abs does not undo pruning. The
thresholds s must NOT be abs'ed: a negative s (small threshold) would become a large positive
one and prune almost everything.

Stored at test time: the nonzeros of the pruned P_eff and Q_eff in a sparse format.
``embedding_rows()`` reports ceil(stored nonzeros / R), i.e. those counted in rows of R numbers
(the sparse format's position indices are not counted, as in the CERP/PEP parameter counts);
``dense_rows()`` = 2b is the size before pruning. No index is stored (x mod b, x div c are
computed). Gradient averaging (Eq. 7, ``grad_avg``, default on as for Modulo, BH, AE): a meta
row's gradient, and its thresholds', is divided by the entities composed from it (about c for
P, b for Q); without it, plain GD at the shared lr moves the meta rows ~40x faster than a full row and the
validation MSE is best after ~75 steps (ML-100k fold 0 at 5%: test MSE 1.036).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


@dataclass(frozen=True)
class CERPParams(MethodParams):
    buckets: int = 0                 # b rows per meta table; 0: ceil(sqrt(M)) (must be >= that)
    threshold_init: float = -5.0     # initial s; threshold sigmoid(s)
    lambda_prune: float = 1000.0     # weight of Σ|W_eff| while above the budget
    lambda_comp: float = 0.0         # weight of the complementarity regulariser (off by default)
    comp_scale: float = 100.0        # K in tanh(K e)
    grad_avg: bool = True            # divide a meta row's gradient by the entities using it (Eq. 7)
    threshold_scale: float = 10.0    # s = scale · θ: the thresholds' step is scale² times the lr
    finalize_at: int = 1000          # hard-prune to the budget at this step at the latest (phase 2 after)


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
        p, q = init_vectors(b, dim, generator, params.init_scale), init_vectors(b, dim, generator, params.init_scale)
        self.weight = nn.Parameter(torch.cat([p, q]))                         # (2b, R): P over Q
        self.theta = nn.Parameter(torch.full((2 * b, dim), params.threshold_init / params.threshold_scale))
        self.register_buffer("keep", torch.ones(2 * b, dim))                  # finalize() mask
        self.finalized = False
        ids = torch.arange(num_entities)
        self.register_buffer("rows", torch.stack([ids % b, b + ids // self.stride], dim=1))   # (M, 2)

    # --- the two meta tables (views of the stacked one) ------------------------------------------
    @property
    def P(self) -> torch.Tensor:
        return self.weight[: self.buckets]

    @property
    def Q(self) -> torch.Tensor:
        return self.weight[self.buckets:]

    @property
    def rowP(self) -> torch.Tensor:
        """(M,) x mod b."""
        return self.rows[:, 0]

    @property
    def rowQ(self) -> torch.Tensor:
        """(M,) x div c (as a row of Q)."""
        return self.rows[:, 1] - self.buckets

    @property
    def threshold(self) -> torch.Tensor:
        """(2b, R) s; the pruning threshold of an entry is sigmoid(s)."""
        return self.params.threshold_scale * self.theta

    # --- effective (pruned) table ------------------------------------------------------------------
    def effective_table(self) -> torch.Tensor:
        """(2b, R) W_eff = sign(W)·relu(|W| - sigmoid(s)); in ``eval()`` mode (what is stored at
        test time) also hard-pruned to the budget."""
        w = torch.sign(self.weight) * torch.relu(self.weight.abs() - torch.sigmoid(self.threshold)) * self.keep
        if self.training:
            return w
        return w * self._budget_mask(w.detach())

    def effective_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(P_eff, Q_eff), each (b, R)."""
        w = self.effective_table()
        return w[: self.buckets], w[self.buckets:]

    def _budget_mask(self, w: torch.Tensor) -> torch.Tensor:
        """(2b, R) 1 for the largest |entries|, at most M_q·R nonzeros."""
        mags = w.abs().flatten()
        k = min(self.budget_entries(), int((mags > 0).sum()))
        keep = torch.zeros_like(mags)
        if k > 0:
            keep[torch.topk(mags, k).indices] = 1.0
        return keep.view_as(w)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.effective_table()[self.rows[ids]].sum(dim=-2)             # (..., 2, R) -> (..., R)

    # --- budget and size -----------------------------------------------------------------------
    def budget_entries(self) -> int:
        """M_q · R: nonzeros allowed at test time."""
        return self.budget_rows() * self.dim

    def nonzeros(self) -> int:
        """Nonzeros of the effective table in the current mode (training: soft-thresholded)."""
        with torch.no_grad():
            return int((self.effective_table() != 0).sum())

    def stored_nonzeros(self) -> int:
        """Nonzeros stored at test time: the training-mode ones, capped at the budget M_q·R."""
        was = self.training
        self.train()
        try:
            return min(self.nonzeros(), self.budget_entries())
        finally:
            self.train(was)

    def dense_rows(self) -> int:
        """2b: the rows of both meta tables before pruning."""
        return 2 * self.buckets

    def embedding_rows(self) -> int:
        """ceil(stored nonzeros / R), at least 1: the pruned tables counted in rows of R numbers."""
        return max(1, -(-self.stored_nonzeros() // self.dim))

    def index_entries(self) -> int:
        return 0

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The meta table only: abs on the thresholds would turn a small threshold into a huge
        one, and the norm regulariser (Eq. 8) on them would pull every threshold to sigmoid(0)."""
        return [self.weight]

    def shared_rows(self):
        """(stacked table, (M, 2) rows) for gradient averaging (Eq. 7)."""
        return (self.weight, self.rows) if self.params.grad_avg else None

    def row_usage(self):
        """Gradient averaging divides the thresholds' gradients too: a threshold belongs to a
        meta row and sums the gradient of every entity composed from it, like the row itself."""
        usage = super().row_usage()
        return None if usage is None else ([self.weight, self.theta], usage[1])

    # --- training terms ------------------------------------------------------------------------
    def penalty(self) -> torch.Tensor | None:
        lp, lc = self.params.lambda_prune, self.params.lambda_comp
        terms = []
        w = self.effective_table()
        if lp > 0 and not self.finalized and self.nonzeros() > self.budget_entries():
            terms.append(lp * w.abs().sum())
        if lc > 0:
            e = w[self.rows].sum(dim=-2)                                          # (M, R)
            terms.append(lc * (1 - torch.tanh(self.params.comp_scale * e).pow(2)).sum() / self.num_entities)
        return sum(terms) if terms else None

    @torch.no_grad()
    def finalize(self) -> int:
        """Make the test-time pruning permanent: keep the largest |W_eff| of both tables, at most
        M_q·R of them (nonzeros only); later steps only retrain the kept entries. Returns the
        nonzeros left."""
        was = self.training
        self.train()
        self.keep.mul_(self._budget_mask(self.effective_table()))
        self.train(was)
        self.finalized = True
        return self.nonzeros()

    # --- the schedule (StepAware) ------------------------------------------------------------------
    @torch.no_grad()
    def on_step(self, step: int) -> None:
        """Phase 1 until the nonzeros fit the budget or step ``finalize_at``; then finalize."""
        if not self.finalized and step > 0 and (step >= self.params.finalize_at
                                                 or self.nonzeros() <= self.budget_entries()):
            self.finalize()

    def selectable(self) -> bool:
        """Validation may select the model only once it is pruned for good (phase 2)."""
        return self.finalized
