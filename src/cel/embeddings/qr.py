"""Quotient-remainder (QR) compositional embedding baseline.

Shi, Mudigere, Naumov, Yang. "Compositional Embeddings Using Complementary Partitions for
Memory-Efficient Recommendation Systems", KDD 2020.

Mechanism: a remainder table of m rows indexed by x mod m and a quotient table of
q = ceil(M/m) rows indexed by x // m. The two partitions are complementary: (x // m, x mod m)
is different for every id, so no two entities get the same pair of rows. The entity's
embedding combines its two rows with ``op``: "mult" (elementwise product, the paper's default),
"add" (sum), or "concat" (each table has R/2 columns, R must be even).

Choice of m (memory budget M_q = ``budget_rows()``): stored rows are m + ceil(M/m). We take the
largest total that is <= M_q (use as much of the budget as allowed); among the m giving that
total, the largest m (the remainder table is the plain hashing-trick table of the paper and the
quotient table its small complementary correction, as with the paper's "number of collisions"
ceil(M/m) being small). For m >= sqrt(M) the total rises by 0 or 1 per step of m, up to M + 1
at m = M, so when the budget is feasible the total is exactly M_q. ``remainder_rows`` forces m.
For "concat" a row holds R/2 numbers, so the budget is 2·M_q half-rows (m + q <= 2·M_q) and
``embedding_rows()`` reports ceil((m + q) / 2) full rows (the exact count when m + q is even,
which is the case whenever the budget is feasible; otherwise it over-reports by half a row).

Budget fallback: min over m of m + ceil(M/m) is about 2·sqrt(M) (at m ~ sqrt(M)). When M_q is
below it (M_q < ~2·sqrt(M), e.g. M = 200 at 5%: M_q = 10 < 29; ML-100k items M = 1682 at 0.5%:
M_q = 8 < 82), no m fits, and we take the smallest achievable total (largest such m). The
method then stores MORE than M_q rows: ``embedding_rows()`` reports what is really stored,
``nominal_rows()`` the M_q the compression asked for, ``over_budget`` says so, and the class
sets ``may_exceed_budget`` (like BH); since the feasible case stores exactly M_q rows,
``embedding_rows() >= M_q`` holds in every case.

Initialisation (Appendix D.1's ``init_vectors`` is the reference scale of every method):
* "mult": remainder table = ``init_vectors``; quotient table = 1 + 0.1·``init_vectors`` (entries
  in [0.9, 1.1]). A product of two ``init_vectors`` tables would start ~4x smaller than every
  other method; with the quotient near 1 the initial embedding is the remainder row (a
  Modulo-like start) and the quotient learns a multiplicative correction. The quotient stays
  positive, so NMF's abs after each step leaves it unchanged at first and the product of two
  nonnegative tables is nonnegative, as NMF needs. (The authors' DLRM code draws both tables
  from U(sqrt(1/M), 1), also positive and of order 1.)
* "add": both tables = 0.5·``init_vectors``, so the sum lies in [-1, 1] like the others.
* "concat": both tables = ``init_vectors`` with R/2 columns.
The seed-dependent noise in every table makes the quotient rows distinct.

Stored at test time: the two tables; the hashes are computed from the ids, so no index. No
gradient averaging (an entity uses two rows of two tables; the paper trains them plainly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors

OPS = ("mult", "add", "concat")


@dataclass(frozen=True)
class QRParams(MethodParams):
    op: str = "mult"            # how the two rows are combined: "mult" (paper default), "add", "concat"
    remainder_rows: int = 0     # m; 0: chosen from the budget (choose_remainder)


def qr_total(num_entities: int, m: int) -> int:
    """Rows stored for remainder size m: m + ceil(M/m)."""
    return m + -(-num_entities // m)


def choose_remainder(num_entities: int, budget: int) -> int:
    """Largest total m + ceil(M/m) <= budget (ties: largest m); if none fits, the smallest total."""
    best = None                                  # (total, m), compared lexicographically
    for m in range(1, num_entities + 1):
        t = qr_total(num_entities, m)
        if t <= budget and (best is None or (t, m) >= best):
            best = (t, m)
    if best is not None:
        return best[1]
    return min(range(1, num_entities + 1), key=lambda m: (qr_total(num_entities, m), -m))


class QREmbedding(EmbeddingMethod):
    Params = QRParams
    may_exceed_budget = True     # only when M_q < min_m (m + ceil(M/m)) ~ 2 sqrt(M)

    def __init__(self, num_entities, dim, compression, params: QRParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        if params.op not in OPS:
            raise ConfigError(f"config invalid value at 'method.op': expected one of {', '.join(OPS)}, got {params.op!r}")
        if params.op == "concat" and dim % 2:
            raise ConfigError(f"config invalid value at 'method.op': 'concat' needs an even dimension, got R = {dim}")
        if params.remainder_rows < 0 or params.remainder_rows > num_entities:
            raise ConfigError(f"config invalid value at 'method.remainder_rows': expected 0 or 1..{num_entities}, "
                              f"got {params.remainder_rows}")
        half_rows = params.op == "concat"
        budget = self.budget_rows() * (2 if half_rows else 1)
        self.m = params.remainder_rows or choose_remainder(num_entities, budget)
        self.q = -(-num_entities // self.m)
        self.over_budget = self.m + self.q > budget
        cols = dim // 2 if half_rows else dim
        rem = init_vectors(self.m, cols, generator, params.init_scale)
        quo = init_vectors(self.q, cols, generator, params.init_scale)
        if params.op == "mult":
            quo = 1.0 + 0.1 * quo
        elif params.op == "add":
            rem, quo = 0.5 * rem, 0.5 * quo
        self.remainder = nn.Parameter(rem)    # (m, R) or (m, R/2)
        self.quotient = nn.Parameter(quo)     # (q, R) or (q, R/2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        r = self.remainder[ids % self.m]
        q = self.quotient[torch.div(ids, self.m, rounding_mode="floor")]
        if self.params.op == "mult":
            return r * q
        if self.params.op == "add":
            return r + q
        return torch.cat([q, r], dim=-1)

    def nominal_rows(self) -> int:
        return self.budget_rows()

    def embedding_rows(self) -> int:
        rows = self.m + self.q
        return -(-rows // 2) if self.params.op == "concat" else rows

    def index_entries(self) -> int:
        return 0
