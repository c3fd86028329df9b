"""Binary code based hash embedding (BH) baseline.

Yan, Wang, Liu, Lin, Lee, Xu, Zheng. "Binary Code based Hash Embedding for Web-scale
Applications", CIKM 2021, 3563-3567 (the CEL paper's [23]).

Mechanism: entity x gets an L-bit binary code, L = ceil(log2 M) (so 2^L >= M). The original first
hashes the raw feature value to an integer "hash ID"; here the hash is x -> a·x mod 2^L with an odd a
(a bijection on [0, 2^L), see ``hash_ids``), and the code is its binary. The code is cut
into B consecutive blocks ("Succession" code-block strategy); a block of b bits is read as an
integer in [0, 2^b) and indexes that block's own table of 2^b rows; the entity's embedding is
the sum of its B looked-up rows (the original's "fusion" default, sum pooling; ``pooling="mean"``
divides by B). Different ids have different codes, hence different tuples of rows.

Block sizes: the L bits are split as evenly as possible into exactly B blocks, larger blocks
first (L=10, B=3 gives 4, 3, 3 bits). For a given B this minimises the memory
Σ_b 2^(bits_b), which equals the paper's B × 2^(L/B) when B divides L.

Choice of B (CEL Appendix D.1): "choose an appropriate B so that its memory usage
B × 2^(L/B) >= M_q is just slightly larger than M_q": over B = 1..L we take the smallest memory
that is >= M_q (ties: fewer blocks). B = 1 (2^L >= M >= M_q rows) always qualifies, so a choice
always exists; when M_q is below the smallest possible memory (2L rows, B = L) this gives B = L
and the method stores more than M_q rows. Ties (e.g. L = 11: B = 6, 10 and 11 all give 22 rows)
go to the fewest blocks (fewer entities share each row at the same memory); ``blocks`` forces a
B. Caveat of the rule with L = ceil(log2 M): memory jumps from 2^L (B = 1) to about
2 · 2^(L/2) (B = 2), so an M_q in between gives B = 1, i.e. a full table (no compression), e.g.
ML-1m items (M = 3706, L = 12) at 5%: M_q = 185 > 128, so B = 1 and 4096 rows. D.1 only
requires 2^L >= M, so L may be longer: ``code_bits = 13`` gives B = 2, 7 + 6 bits, 192 rows.
In every case the stored size is >= M_q:
``embedding_rows()`` reports what is really stored, ``nominal_rows()`` the M_q the compression
asked for.

Stored at test time: the Σ_b 2^(bits_b) rows; the codes are computed from the ids, so no index.
NMF's nonnegativity (abs) applies to the whole table (all blocks' rows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, init_vectors


@dataclass(frozen=True)
class BHParams(MethodParams):
    pooling: str = "sum"      # how the B block rows are fused: "sum" (original default) or "mean"
    blocks: int = 0           # 0: choose B by the CEL D.1 rule; else a fixed B in 1..L
    code_bits: int = 0        # L; 0: searched with B for the smallest memory >= M_q (choose_code)
    grad_avg: bool = True     # divide a row's gradient by the entities using it (as Modulo and CEL)


def code_length(num_entities: int) -> int:
    """L = ceil(log2 M), at least 1."""
    return max(1, math.ceil(math.log2(max(num_entities, 2))))


def block_bits(length: int, blocks: int) -> list[int]:
    """Bits of each of ``blocks`` blocks of an L-bit code, as even as possible, larger first."""
    if not 1 <= blocks <= length:
        raise ValueError(f"BH needs 1 <= B <= L, got B={blocks}, L={length}")
    q, r = divmod(length, blocks)
    return [q + 1] * r + [q] * (blocks - r)


def block_memory(length: int, blocks: int) -> int:
    """Rows stored for B blocks: Σ_b 2^(bits_b)."""
    return sum(2 ** b for b in block_bits(length, blocks))


def choose_blocks(length: int, budget: int) -> int:
    """B in 1..L whose memory is the smallest that is >= M_q (ties: smaller B); B = L when none is."""
    ok = [(block_memory(length, b), b) for b in range(1, length + 1) if block_memory(length, b) >= budget]
    return min(ok)[1] if ok else length


HASH_MULTIPLIER = 2654435761   # odd (Knuth's multiplicative hash): x -> a·x mod 2^L is a bijection


def hash_ids(ids: torch.Tensor, length: int) -> torch.Tensor:
    """The "hash ID" of the original BH: spreads the ids over all 2^L codes, so that a code
    longer than ceil(log2 M) still reaches every row of every block (zero-padded binary codes
    would leave the high blocks' rows unused). Injective for ids < 2^L."""
    return (ids * HASH_MULTIPLIER) % (2 ** length)


def choose_code(num_entities: int, budget: int, extra_bits: int = 8) -> tuple[int, int]:
    """(L, B) with the smallest memory >= M_q over L = ceil(log2 M) .. +extra_bits and B = 1..L
    (ties: shorter code, then fewer blocks). D.1 only asks 2^L >= M; searching L as well avoids
    the no-compression jump of L = ceil(log2 M) (ML-1m items at 5%: 4096 -> 192 rows)."""
    base = code_length(num_entities)
    best = None
    for length in range(base, base + extra_bits + 1):
        b = choose_blocks(length, budget)
        cand = (block_memory(length, b), length, b)
        if cand[0] >= budget and (best is None or cand < best):
            best = cand
    if best is None:                      # M_q below every memory: the smallest one (B = L = L0)
        return base, base
    return best[1], best[2]


class BHEmbedding(EmbeddingMethod):
    Params = BHParams
    may_exceed_budget = True

    def __init__(self, num_entities, dim, compression, params: BHParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        if params.pooling not in ("sum", "mean"):
            raise ConfigError(f"config invalid value at 'method.pooling': expected 'sum' or 'mean', got {params.pooling!r}")
        if params.code_bits or params.blocks:
            self.code_len = params.code_bits or code_length(num_entities)
            auto_blocks = 0
        else:
            self.code_len, auto_blocks = choose_code(num_entities, self.budget_rows())
        if 2 ** self.code_len < num_entities:
            raise ConfigError(f"config invalid value at 'method.code_bits': 2^{self.code_len} < M = {num_entities}")
        if params.blocks and not 1 <= params.blocks <= self.code_len:
            raise ConfigError(f"config invalid value at 'method.blocks': expected 0 or 1..{self.code_len}, got {params.blocks}")
        self.n_blocks = params.blocks or auto_blocks or choose_blocks(self.code_len, self.budget_rows())
        self.bits = block_bits(self.code_len, self.n_blocks)
        sizes = [2 ** b for b in self.bits]
        self.total_rows = sum(sizes)
        # One stored table: the B per-block tables stacked, block b's rows start at offset[b].
        self.weight = nn.Parameter(init_vectors(self.total_rows, dim, generator, params.init_scale))   # (Σ 2^bits, R)
        ids = hash_ids(torch.arange(num_entities), self.code_len)   # a bijection on [0, 2^L)
        rows, shift, offset = [], self.code_len, 0
        for b, size in zip(self.bits, sizes):                     # most significant block first
            shift -= b
            rows.append(offset + ((ids >> shift) & (size - 1)))
            offset += size
        self.register_buffer("rows", torch.stack(rows, dim=1))    # (M, B) absolute row per block

    def codes(self) -> torch.Tensor:
        """(M, B) integer value of each block of each entity's binary code."""
        offsets = torch.tensor([0] + [2 ** b for b in self.bits[:-1]]).cumsum(0)
        return self.rows - offsets

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.weight[self.rows[ids]].sum(dim=-2)             # (..., B, R) -> (..., R)
        return out / self.n_blocks if self.params.pooling == "mean" else out

    def shared_rows(self):
        """(table, (M, B) rows) for gradient averaging (Eq. 7), the same treatment as Modulo."""
        return (self.weight, self.rows) if self.params.grad_avg else None

    def nominal_rows(self) -> int:
        """M_q, the rows the compression ratio asks for (the real size is ``embedding_rows()``)."""
        return self.budget_rows()

    def embedding_rows(self) -> int:
        """Σ_b 2^(bits_b): really stored; >= M_q by the D.1 rule, and > M_q when 2L > M_q."""
        return self.total_rows

    def index_entries(self) -> int:
        return 0

    def used_rows(self) -> int:
        """Rows some entity actually indexes (<= ``embedding_rows()``; with B = 1 it is M: no
        compression at all, each entity has its own row)."""
        return int(torch.unique(self.rows).numel())
