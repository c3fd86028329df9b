"""AE (adaptive embedding) and QR (quotient-remainder compositional embedding) baselines."""
import math

import pytest
import torch

from cel.errors import ConfigError
from cel.embeddings.ae import AEEmbedding, ae_rows
from cel.embeddings.qr import QREmbedding, choose_remainder, qr_total
from cel.train.grad_avg import average_shared_gradients

M, R = 2000, 8
CLASSES = {"ae": AEEmbedding, "qr": QREmbedding, "qr_add": QREmbedding, "qr_concat": QREmbedding}
KW = {"ae": {}, "qr": {}, "qr_add": {"op": "add"}, "qr_concat": {"op": "concat"}}


def _build(name, compression, seed=0, m=M, r=R, **kw):
    cls = CLASSES[name]
    return cls(m, r, compression, cls.Params(**{**KW[name], **kw}), torch.Generator().manual_seed(seed))


# --- AE ------------------------------------------------------------------------------------------

def test_ae_warmest_get_private_rows_rest_modulo():
    m, budget = 20, 7                                   # W = 3 private rows, 4 shared rows
    emb = AEEmbedding(m, 4, 35.0, AEEmbedding.Params(), torch.Generator().manual_seed(0))
    assert emb.budget_rows() == budget and emb.n_warm == 3 and emb.index_entries() == 3
    counts = torch.zeros(m, dtype=torch.long)
    counts[[13, 2, 17, 5]] = torch.tensor([50, 9, 9, 3])  # 13 warmest; 2 and 17 tie -> 2 first
    emb.set_counts(counts)
    rows = emb.rows
    assert rows[13] == 0 and rows[2] == 1 and rows[17] == 2
    assert emb.warm_ids().tolist() == [13, 2, 17]
    for x in range(m):
        if x not in (13, 2, 17):
            assert rows[x] == 3 + x % 4                 # shared part by modulo
    assert torch.equal(emb(torch.tensor([13, 5])), emb.weight[torch.tensor([0, 3 + 5 % 4])])


def test_ae_default_counts_make_first_ids_warm_and_m_q_one():
    emb = AEEmbedding(20, 4, 35.0, AEEmbedding.Params(), torch.Generator().manual_seed(0))
    assert emb.rows[:3].tolist() == [0, 1, 2]
    assert torch.equal(ae_rows(torch.zeros(5, dtype=torch.long), 1), torch.zeros(5, dtype=torch.long))
    tiny = AEEmbedding(50, 4, 1.0, AEEmbedding.Params(), torch.Generator().manual_seed(0))   # M_q = 1
    assert tiny.n_warm == 0 and tiny.index_entries() == 0 and tiny.rows.unique().tolist() == [0]


def test_ae_warm_rows_are_private():
    g = torch.Generator().manual_seed(1)
    counts = torch.randint(0, 5, (M,), generator=g)      # many ties
    emb = _build("ae", 5.0)
    emb.set_counts(counts)
    w = emb.n_warm
    assert w == 50
    warm = emb.rows < w
    assert int(warm.sum()) == w                          # exactly W entities on private rows
    assert emb.rows[warm].unique().numel() == w          # no two warm entities share a row
    # the warm set is the top-W by count, ties by id
    order = sorted(range(M), key=lambda x: (-int(counts[x]), x))[:w]
    assert set(torch.nonzero(warm).flatten().tolist()) == set(order)
    assert int(counts[warm].min()) >= int(counts[~warm].max())


def test_ae_set_counts_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        _build("ae", 5.0).set_counts(torch.zeros(M - 1))


def test_ae_grad_averaging_divides_by_row_size():
    m = 20
    emb = AEEmbedding(m, 4, 35.0, AEEmbedding.Params(), torch.Generator().manual_seed(0))  # W=3, 4 shared
    emb.table().sum().backward()                        # each entity contributes a gradient of ones
    sizes = torch.bincount(emb.rows, minlength=7)
    assert sizes.tolist() == [1, 1, 1] + [4, 4, 4, 5]   # ids 3..19 by x mod 4: 3,7,11,15,19 -> row 6
    assert torch.equal(emb.weight.grad, sizes[:, None].float().expand(7, 4))
    average_shared_gradients(emb)
    assert torch.allclose(emb.weight.grad, torch.ones(7, 4))
    off = AEEmbedding(m, 4, 35.0, AEEmbedding.Params(grad_avg=False), torch.Generator().manual_seed(0))
    assert off.shared_rows() is None


# --- QR ------------------------------------------------------------------------------------------

def test_qr_choice_of_m_hand_case():
    # M = 2000, M_q = 100: largest feasible total 100, largest m with it.
    m = choose_remainder(2000, 100)
    assert qr_total(2000, m) == 100 and qr_total(2000, m + 1) > 100 or m == 2000
    assert all(qr_total(2000, k) != 100 for k in range(m + 1, 2001))
    assert m == 72 and -(-2000 // 72) == 28
    # the budget is respected whenever some m fits, and then used exactly
    for mm in (50, 200, 1682, 2000):
        lo = min(qr_total(mm, k) for k in range(1, mm + 1))
        for budget in range(lo, mm + 2):
            assert qr_total(mm, choose_remainder(mm, budget)) == budget
        if lo > 1:                                       # infeasible: smallest total
            assert qr_total(mm, choose_remainder(mm, lo - 1)) == lo


@pytest.mark.parametrize("compression", [5.0, 10.0])
def test_qr_budget_respected_when_feasible(compression):     # M_q >= 2 sqrt(M) = 89.4
    for name in ("qr", "qr_add"):
        emb = _build(name, compression)
        assert not emb.over_budget
        assert emb.m + emb.q <= emb.budget_rows() and emb.embedding_rows() == emb.nominal_rows()
        assert emb.m * emb.q >= M
    emb = _build("qr_concat", compression)
    assert emb.m + emb.q <= 2 * emb.budget_rows() and emb.embedding_rows() == emb.budget_rows()
    assert emb.remainder.shape == (emb.m, R // 2) and emb.quotient.shape == (emb.q, R // 2)


def test_qr_budget_fallback():
    emb = _build("qr", 5.0, m=200)                      # M_q = 10 < 2 sqrt(200) = 28.3
    assert emb.over_budget and emb.nominal_rows() == 10
    assert emb.embedding_rows() == min(qr_total(200, k) for k in range(1, 201)) == 29
    assert emb.num_parameters() == 29 * R
    emb = _build("qr", 1.0)                             # M = 2000 at 1%: M_q = 20 < 89.4
    assert emb.over_budget and emb.embedding_rows() == 90
    emb = _build("qr_concat", 1.0)                      # 2 M_q = 40 half-rows < 89.4 as well
    assert emb.over_budget and emb.m + emb.q == 90 and emb.embedding_rows() == 45
    assert not _build("qr_concat", 2.5).over_budget     # 2 M_q = 100 half-rows fit: 50 rows
    assert _build("qr_concat", 2.5).embedding_rows() == 50
    emb = _build("qr", 0.5, m=1682)                     # M_q = 8 (ML-100k items at 0.5%)
    assert emb.over_budget and emb.nominal_rows() == 8 and emb.embedding_rows() == 83


def test_qr_pairs_are_unique_and_concat_rows_distinct():
    emb = _build("qr_concat", 1.0)
    ids = torch.arange(M)
    pairs = torch.stack([ids // emb.m, ids % emb.m], 1)
    assert torch.unique(pairs, dim=0).shape[0] == M
    assert emb.q > 1 and emb.m > 1
    assert torch.unique(emb.remainder.detach(), dim=0).shape[0] == emb.m   # rows of each table distinct
    assert torch.unique(emb.quotient.detach(), dim=0).shape[0] == emb.q
    assert torch.unique(emb.table().detach(), dim=0).shape[0] == M          # hence no identical rows


@pytest.mark.parametrize("op", ["mult", "add", "concat"])
def test_qr_forward_hand_case(op):
    # M = 7, m = 3 (q = 3): id 5 -> quotient 1, remainder 2; id 6 -> quotient 2, remainder 0.
    emb = QREmbedding(7, 4, 100.0, QREmbedding.Params(op=op, remainder_rows=3), torch.Generator().manual_seed(0))
    assert (emb.m, emb.q) == (3, 3)
    cols = 2 if op == "concat" else 4
    with torch.no_grad():
        emb.remainder.copy_(torch.arange(3 * cols, dtype=torch.float).reshape(3, cols) + 1)
        emb.quotient.copy_(torch.arange(3 * cols, dtype=torch.float).reshape(3, cols) + 10)
    out = emb(torch.tensor([5, 6]))
    if op == "mult":
        want = [[14 * 9, 15 * 10, 16 * 11, 17 * 12], [18 * 1, 19 * 2, 20 * 3, 21 * 4]]
    elif op == "add":
        want = [[14 + 9, 15 + 10, 16 + 11, 17 + 12], [18 + 1, 19 + 2, 20 + 3, 21 + 4]]
    else:
        want = [[12, 13, 5, 6], [14, 15, 1, 2]]          # [quotient row, remainder row]
    assert torch.equal(out, torch.tensor(want, dtype=torch.float))


def test_qr_mult_init_and_nonnegativity():
    emb = _build("qr", 5.0)
    assert emb.quotient.min() >= 0.9 and emb.quotient.max() <= 1.1
    assert emb.remainder.abs().max().item() == pytest.approx(1.0)
    with torch.no_grad():                               # NMF's constraint keeps the product >= 0
        for p in emb.embedding_parameters():
            p.abs_()
    assert emb.table().min() >= 0
    add = _build("qr_add", 5.0)
    assert add.table().abs().max() <= 1.0 + 1e-6


def test_qr_rejects_bad_params():
    with pytest.raises(ConfigError, match="method.op"):
        _build("qr", 5.0, op="sum")
    with pytest.raises(ConfigError, match="even"):
        _build("qr_concat", 5.0, r=7)
    with pytest.raises(ConfigError, match="remainder_rows"):
        _build("qr", 5.0, remainder_rows=M + 1)


# --- the registry checks of tests/test_embeddings.py, by direct import ---------------------------

CASES = [(n, c) for n in CLASSES for c in (5.0, 1.0)]
#: stored rows at M = 2000 by hand: AE M_q (+ M_q/2 warm ids); QR m + ceil(M/m) rows, the smallest
#: total 90 where 1 % (M_q = 20) cannot be met; concat stores half rows (R/2 numbers each)
ROWS = {("ae", 5.0): 100, ("ae", 1.0): 20, ("qr", 5.0): 100, ("qr", 1.0): 90, ("qr_add", 5.0): 100,
        ("qr_add", 1.0): 90, ("qr_concat", 5.0): 100, ("qr_concat", 1.0): 45}


@pytest.mark.parametrize("name, compression", CASES)
def test_num_parameters_matches_compression(name, compression):
    emb = _build(name, compression)
    budget = max(1, round(compression / 100 * M))
    rows = ROWS[name, compression]
    index = budget // 2 if name == "ae" else 0          # AE: the ids of the W = M_q/2 warm entities
    assert emb.embedding_rows() == rows and emb.index_entries() == index
    assert emb.num_parameters() == rows * R + index
    if name == "ae":                                    # counted from the tensors: M_q rows, W private ones
        assert emb.weight.numel() == rows * R and int((torch.bincount(emb.rows) == 1).sum()) == index
    else:                                               # the two tables hold exactly these numbers
        stored = emb.remainder.numel() + emb.quotient.numel()
        assert stored == (emb.m + emb.q) * (R // 2 if name == "qr_concat" else R)
        assert stored <= emb.num_parameters() < stored + R
    if compression == 5.0 or name == "ae":              # where the budget can be met: met exactly
        assert rows == budget


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("m", [200, 2000])
def test_registry_bound_at_small_m(name, m):
    # what tests/test_embeddings.py checks (M = 200) once registered: BH-style bound for QR
    for compression in (5.0, 1.0):
        emb = _build(name, compression, m=m)
        budget = max(1, round(compression / 100 * m))
        if emb.may_exceed_budget:
            assert emb.embedding_rows() >= budget
        else:
            assert 1 <= emb.embedding_rows() <= budget
        assert emb.table().shape == (m, R)




def test_run_driver_gives_ae_the_training_counts(tmp_path):
    """In a real run, AE's private rows go to the warmest items of the training fold."""
    import numpy as np
    import pandas as pd
    import yaml

    from cel.config import load_config
    from cel.train import run as run_mod
    from conftest import REPO

    prof = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    prof.update(results_dir=str(tmp_path / "r"), methods={"ae": {}})
    prof["grid"] = [{"datasets": ["synth"], "methods": ["ae"], "compressions": [10], "folds": [0]}]
    prof["train"]["steps"] = 5
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(prof))
    cfg = load_config(tmp_path / "p.yaml")
    seen = {}
    original = run_mod.Trainer.fit

    def spy(self):
        seen["emb"] = self.item_emb
        return original(self)

    run_mod.Trainer.fit = spy
    try:
        run_mod.execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    finally:
        run_mod.Trainer.fit = original
    data, _ = run_mod.load_fold(cfg, cfg.runs()[0])
    train, _ = run_mod.holdout(data.train, cfg.train.val_fraction, seed=cfg.train.seed)
    counts = np.bincount(train["item"], minlength=data.n_items)
    emb = seen["emb"]
    W = emb.budget_rows() // 2
    warm = set(emb.warm_ids().tolist())
    assert len(warm) == W
    assert min(counts[list(warm)]) >= max(np.delete(counts, list(warm)))
