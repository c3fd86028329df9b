"""BH (binary code hash embedding) and CERP (compositional embedding, regularised pruning)."""
import math

import pytest
import torch

from cel.errors import ConfigError
from cel.embeddings.base import test_time
from cel.embeddings.bh import choose_code, hash_ids, BHEmbedding, block_bits, block_memory, choose_blocks, code_length
from cel.embeddings.cerp import CERPEmbedding

M, R = 2000, 8
CLASSES = {"bh": BHEmbedding, "cerp": CERPEmbedding}


def _build(name, compression, seed=0, m=M, r=R, **kw):
    cls = CLASSES[name]
    return cls(m, r, compression, cls.Params(**kw), torch.Generator().manual_seed(seed))


# --- BH ------------------------------------------------------------------------------------------

def test_bh_block_rule_hand_case():
    # M = 1000: L = 10; even splits, larger blocks first.
    assert code_length(1000) == 10
    assert block_bits(10, 3) == [4, 3, 3]
    assert [block_memory(10, b) for b in range(1, 11)] == [1024, 64, 32, 24, 20, 20, 20, 20, 20, 20]
    assert choose_blocks(10, 50) == 2        # M_q = 50 (5%): 64 is the smallest memory >= 50
    assert choose_blocks(10, 30) == 3        # M_q = 30 (3%): 32
    assert choose_blocks(10, 24) == 4        # exact fit
    assert choose_blocks(10, 10) == 5        # below 2L = 20: smallest memory 20, fewest blocks
    assert choose_blocks(10, 1000) == 1      # M_q = M: one table of 2^L rows
    emb = BHEmbedding(1000, 4, 5.0, BHEmbedding.Params(code_bits=10), torch.Generator().manual_seed(0))
    assert (emb.n_blocks, emb.bits, emb.embedding_rows(), emb.nominal_rows()) == (2, [5, 5], 64, 50)
    # searching the code length as well finds a memory closer above M_q = 50
    assert choose_code(1000, 50) == (15, 4) and block_memory(15, 4) == 56
    emb = BHEmbedding(1000, 4, 5.0, BHEmbedding.Params(), torch.Generator().manual_seed(0))
    assert (emb.code_len, emb.n_blocks, emb.embedding_rows()) == (15, 4, 56)
    emb = BHEmbedding(1682, 4, 0.5, BHEmbedding.Params(), torch.Generator().manual_seed(0))
    assert emb.nominal_rows() == 8 and emb.embedding_rows() == 22   # 2L > M_q: stores more


@pytest.mark.parametrize("m", [1, 2, 7, 1000, 1682, 2048])
def test_bh_chosen_memory_is_smallest_above_budget(m):
    L = code_length(m)
    assert 2 ** L >= m
    for budget in range(1, m + 1, max(1, m // 37)):
        b = choose_blocks(L, budget)
        mem = block_memory(L, b)
        others = [block_memory(L, c) for c in range(1, L + 1)]
        above = [o for o in others if o >= budget]
        assert mem == (min(above) if above else min(others))
        assert mem >= budget                       # B = 1 (2^L >= M >= M_q) always qualifies


def test_bh_longer_code_avoids_full_table():
    # ML-1m items at 5%: with L = 12 the rule falls back to B = 1 (a full table, no compression)
    g = torch.Generator().manual_seed(0)
    emb = BHEmbedding(3706, 2, 5.0, BHEmbedding.Params(code_bits=12), g)
    assert (emb.n_blocks, emb.embedding_rows(), emb.used_rows()) == (1, 4096, 3706)
    emb = BHEmbedding(3706, 2, 5.0, BHEmbedding.Params(), g)        # default: L searched too
    assert (emb.code_len, emb.n_blocks, emb.bits, emb.embedding_rows()) == (13, 2, [7, 6], 192)
    assert emb.used_rows() == 192                         # hashed codes reach every row
    assert len({tuple(c) for c in emb.codes().tolist()}) == 3706
    with pytest.raises(ConfigError):
        _build("bh", 5.0, code_bits=10)                   # 2^10 < 2000


def test_bh_codes_unique_and_binary():
    emb = _build("bh", 1.0)
    codes = emb.codes()
    assert codes.shape == (M, emb.n_blocks)
    assert len({tuple(c) for c in codes.tolist()}) == M                  # no two ids share a code
    # reassembling the blocks gives back the id's hash code, and the hash is injective
    value = torch.zeros(M, dtype=torch.long)
    for j, b in enumerate(emb.bits):
        assert int(codes[:, j].max()) < 2 ** b
        value = (value << b) | codes[:, j]
    assert torch.equal(value, hash_ids(torch.arange(M), emb.code_len))
    assert len(set(hash_ids(torch.arange(2 ** 12), 12).tolist())) == 2 ** 12


@pytest.mark.parametrize("pooling", ["sum", "mean"])
def test_bh_forward_is_sum_of_block_rows(pooling):
    emb = BHEmbedding(1000, 3, 3.0, BHEmbedding.Params(pooling=pooling, code_bits=10, blocks=3),
                      torch.Generator().manual_seed(1))
    assert emb.bits == [4, 3, 3]
    x = next(i for i in range(1000) if int(hash_ids(torch.tensor(i), 10)) == 0b1011_010_110)  # blocks 11, 2, 6
    w = emb.weight.detach()
    want = w[11] + w[16 + 2] + w[16 + 8 + 6]
    if pooling == "mean":
        want = want / 3
    assert torch.allclose(emb(torch.tensor([x]))[0], want)


def test_bh_rejects_bad_params():
    with pytest.raises(ConfigError):
        _build("bh", 5.0, pooling="max")
    with pytest.raises(ConfigError):
        _build("bh", 5.0, blocks=99)


# --- CERP ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 2, 10, 99, 100, 101, 1682, 2000])
def test_cerp_indices_valid_and_pairs_unique(m):
    emb = _build("cerp", 5.0, m=m)
    b = emb.buckets
    assert b == math.ceil(math.sqrt(m))
    assert int(emb.rowP.max()) < b and int(emb.rowQ.max()) < b and int(emb.rowP.min()) >= 0
    pairs = set(zip(emb.rowP.tolist(), emb.rowQ.tolist()))
    assert len(pairs) == m
    with pytest.raises(ConfigError):
        if b > 1:
            _build("cerp", 5.0, m=m, buckets=b - 1)
        else:
            raise ConfigError("b = 1 has no smaller choice")


def test_cerp_forward_is_p_plus_q_without_threshold():
    emb = _build("cerp", 5.0, m=1682, threshold_init=-50.0)
    ids = torch.tensor([0, 1, 40, 41, 42, 1681])
    b, c = emb.buckets, emb.stride
    assert (b, c) == (42, 41)                                 # div stride differs from mod base
    want = emb.P.detach()[ids % b] + emb.Q.detach()[ids // c]
    assert torch.allclose(emb(ids), want, atol=1e-6)


def test_cerp_soft_threshold_zeros_small_entries():
    emb = _build("cerp", 5.0, threshold_init=0.0)          # threshold sigmoid(0) = 0.5
    p, q = emb.effective_tables()
    small = emb.P.detach().abs() <= 0.5
    assert small.any() and (~small).any()
    assert torch.all(p.detach()[small] == 0)
    big = ~small
    assert torch.allclose(p.detach()[big].abs(), emb.P.detach()[big].abs() - 0.5)
    assert torch.equal(torch.sign(p.detach()[big]), torch.sign(emb.P.detach()[big]))


def test_cerp_penalty_positive_and_reduces_magnitude():
    emb = _build("cerp", 1.0, lambda_comp=0.0, lambda_prune=1.0)
    pen = emb.penalty()
    assert pen is not None and pen.item() > 0
    before = sum(t.abs().sum() for t in emb.effective_tables()).item()
    pen.backward()
    assert emb.theta.grad.le(0).all() and emb.theta.grad.lt(0).any()   # GD raises s
    with torch.no_grad():
        for prm in emb.parameters():
            prm -= 1e-3 * prm.grad
    after = sum(t.abs().sum() for t in emb.effective_tables()).item()
    assert after < before
    # the complementarity term keeps the penalty nonnegative as well
    assert _build("cerp", 1.0, lambda_prune=0.0, lambda_comp=1.0).penalty().item() >= 0


def test_cerp_penalty_stops_within_budget():
    emb = _build("cerp", 5.0)        # 2b = 90 rows <= M_q = 100: already within budget
    assert emb.dense_rows() == 90 and emb.budget_rows() == 100
    assert emb.penalty() is None


def test_cerp_finalize_meets_budget_and_keeps_largest():
    emb = _build("cerp", 1.0)
    budget = emb.budget_entries()
    assert emb.nonzeros() > budget
    p0, q0 = (t.detach().clone() for t in emb.effective_tables())
    assert emb.finalize() <= budget
    assert emb.nonzeros() == budget and emb.embedding_rows() == emb.budget_rows() == 20
    p, q = emb.effective_tables()
    kept = torch.cat([p0.abs().flatten(), q0.abs().flatten()])[torch.cat([p.flatten(), q.flatten()]) != 0]
    dropped = torch.cat([p0.abs().flatten(), q0.abs().flatten()])[torch.cat([p.flatten(), q.flatten()]) == 0]
    assert kept.min() >= dropped.max()
    # pruned entries stay pruned after more steps (and after the NMF abs)
    emb(torch.arange(M)).pow(2).sum().backward()
    with torch.no_grad():
        for prm in emb.parameters():
            prm -= 1e-2 * prm.grad
        for prm in emb.embedding_parameters():
            prm.abs_()
    assert emb.nonzeros() <= budget


def test_cerp_abs_constraint_keeps_embeddings_nonnegative():
    emb = _build("cerp", 1.0, threshold_init=-2.0)
    assert [id(x) for x in emb.embedding_parameters()] == [id(emb.weight)]   # not the thresholds
    with torch.no_grad():
        for prm in emb.embedding_parameters():
            prm.abs_()
    assert emb.table().min() >= 0


def test_cerp_sizes_count_the_test_time_pruning():
    emb = _build("cerp", 1.0)
    assert emb.dense_rows() == 90 and emb.nonzeros() > emb.budget_entries()   # training mode: soft only
    assert emb.embedding_rows() == math.ceil(min(emb.nonzeros(), emb.budget_entries()) / R) == 20
    assert emb.num_parameters() == 20 * R                 # M_q = 1 % of 2000 rows, no index
    with torch.no_grad(), test_time(emb):                 # what is stored: the pruned nonzeros
        assert int((emb.effective_table() != 0).sum()) == 20 * R


def test_cerp_test_time_keeps_the_largest_entries_within_budget():
    emb = _build("cerp", 1.0)
    train_table = emb.table().detach()
    with test_time(emb):
        assert emb.nonzeros() == emb.budget_entries()
        p, q = (t.detach() for t in emb.effective_tables())
        test_table = emb.table().detach()
    assert emb.training                                           # mode restored
    w = torch.cat([p, q]).abs().flatten()
    soft = emb.effective_table().detach().abs().flatten()
    assert soft[w > 0].min() >= soft[w == 0].max()                # the kept entries are the largest
    assert not torch.equal(train_table, test_table)
    assert torch.equal(test_table, (torch.cat([p, q])[emb.rows]).sum(1))


# --- registry-style checks (BH is registered: tests/test_embeddings.py covers its shapes) -----------


@pytest.mark.parametrize("compression", [5.0, 1.0])
def test_cerp_shapes_and_backward(compression):
    emb = _build("cerp", compression)
    ids = torch.tensor([[0, 5, 7], [1999, 3, 3]])
    out = emb(ids)
    assert out.shape == (2, 3, R)
    assert emb.table().shape == (M, R)
    out.pow(2).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in emb.parameters())

CASES = [(n, c) for n in CLASSES for c in (5.0, 1.0)]


@pytest.mark.parametrize("name, compression", CASES)
def test_sizes(name, compression):
    """The reported size is what the tensors hold at test time: BH its Σ_b 2^bits rows (codes are
    computed from the ids: no index), CERP the nonzeros left by the pruning (no index either)."""
    emb = _build(name, compression)
    budget = max(1, round(compression / 100 * M))
    assert emb.index_entries() == 0
    if name == "bh":      # D.1 rule: just above M_q (never below)
        rows = sum(2 ** b for b in emb.bits)
        assert emb.weight.numel() == rows * R and rows >= budget == emb.nominal_rows()
        assert emb.embedding_rows() == rows and emb.num_parameters() == rows * R
    else:                 # CERP: within M_q after finalize()
        emb.finalize()
        with torch.no_grad(), test_time(emb):
            nonzeros = int((emb.effective_table() != 0).sum())
        assert 0 < nonzeros <= budget * R
        assert emb.embedding_rows() == math.ceil(nonzeros / R) and emb.num_parameters() == math.ceil(nonzeros / R) * R




def test_cerp_prunes_then_retrains_on_schedule():
    emb = _build("cerp", 1.0, finalize_at=7)
    assert not emb.selectable()
    with torch.no_grad():
        for step in range(7):
            emb.on_step(step)
    assert not emb.finalized and emb.nonzeros() > emb.budget_entries()
    with torch.no_grad():
        emb.on_step(7)                                    # the latest step of phase 1
    assert emb.finalized and emb.selectable() and emb.nonzeros() <= emb.budget_entries()
    assert emb.penalty() is None                          # phase 2: retrain the kept entries only
    within = _build("cerp", 5.0)                          # 2b = 90 rows <= M_q = 100 from the start
    with torch.no_grad():
        within.on_step(1)
    assert within.finalized


def test_cerp_threshold_gradients_are_averaged_like_their_rows():
    emb = _build("cerp", 1.0, lambda_prune=0.0)
    params, usage = emb.row_usage()
    assert [id(p) for p in params] == [id(emb.weight), id(emb.theta)]
    assert torch.equal(usage, torch.bincount(emb.rows.flatten(), minlength=2 * emb.buckets))
