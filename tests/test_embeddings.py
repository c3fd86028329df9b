"""One parametrised test over every registered embedding method (and its named variants).

Each method is built as the run driver builds it: constructed, then handed the training fold
(``DataAware``: AE, PreHash, HashGNN), its own periodic update started (``StepAware``: eTree,
JNKM). Checked for every one: output shapes in training and at test time, that backward reaches
the parameters, that the stored size matches the compression, and determinism with a seed.
"""
import math

import pytest
import torch

from cel.embeddings import EMBEDDINGS, DataAware, StepAware, TrainingData, test_time

M, R, N, D = 200, 8, 150, 3000


def _data(seed=0) -> TrainingData:
    g = torch.Generator().manual_seed(seed)
    items = (torch.rand(D, generator=g) ** 2 * M).long()          # skewed: some items are warm
    users = torch.randint(N, (D,), generator=g)
    ratings = torch.randint(1, 6, (D,), generator=g).float()
    return TrainingData(items, users, ratings, M, N)


#: registry key -> extra parameters of named variants worth checking on their own
VARIANTS = {"prehash": [{"top_k": 4}, {"top_k": 0}], "hashgnn": [{"pretrain_epochs": 5}],
            "bh": [{"pooling": "mean"}, {}], "qr": [{"op": "mult"}, {"op": "concat"}],
            "cel": [{}, {"split": False}]}


def _build(name, compression, seed=0, **kw):
    cls = EMBEDDINGS[name]
    emb = cls(M, R, compression, cls.Params(**kw), torch.Generator().manual_seed(seed))
    if isinstance(emb, DataAware):
        emb.fit_data(_data())
    if isinstance(emb, StepAware):
        with torch.no_grad():
            emb.on_step(0)
    return emb


def _compressions(name):
    if name == "full":
        return [100.0]
    if name in ("etree", "jnkm"):                 # 100% = the original, unshared at test time
        return [100.0, 5.0, 1.0]
    return [5.0, 1.0]


CASES = [pytest.param(n, c, kw, id=f"{n}-{c:g}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}")
         for n in EMBEDDINGS for c in _compressions(n) for kw in VARIANTS.get(n, [{}])]


def test_every_registered_method_is_covered():
    assert {c.values[0] for c in CASES} == set(EMBEDDINGS)
    assert {"etree", "jnkm", "modulo", "bh", "ae", "hashgnn", "prehash", "cerp", "qr", "cel", "full"} <= set(EMBEDDINGS)


@pytest.mark.parametrize("name, compression, kw", CASES)
def test_shapes_and_backward(name, compression, kw):
    emb = _build(name, compression, **kw)
    ids = torch.tensor([[0, 5, 7], [199, 3, 3]])
    out = emb(ids)
    assert out.shape == (2, 3, R)
    assert emb.table().shape == (M, R)
    assert torch.allclose(emb.table()[ids], out, atol=1e-6)     # table() is forward over all ids
    out.pow(2).sum().backward()
    grads = [p.grad for p in emb.embedding_parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with torch.no_grad(), test_time(emb):
        assert emb(ids).shape == (2, 3, R)
        assert torch.allclose(emb.table()[ids], emb(ids), atol=1e-6)
        assert torch.isfinite(emb.table()).all()
    assert emb.training


def stored_size(emb) -> tuple[int, int]:
    """(rows of R numbers, other numbers) stored at test time, counted from the method's own
    tensors in ``eval()`` mode: independent of its ``embedding_rows()`` / ``index_entries()``."""
    from cel.embeddings import (AEEmbedding, BHEmbedding, CELEmbedding, CERPEmbedding, FullEmbedding,
                                HashGNNEmbedding, ModuloEmbedding, PreHashEmbedding, QREmbedding)
    from cel.embeddings.cluster_regularized import ClusterRegularizedEmbedding

    R = emb.dim
    with torch.no_grad(), test_time(emb):
        if isinstance(emb, FullEmbedding):
            return emb.weight.shape[0], 0
        if isinstance(emb, CELEmbedding):              # one row per used cluster (+ untied rows), M indices
            own = int(emb.personal_mask.sum()) if emb.personal is not None else 0
            used = emb.assign
            if type(emb).__name__ == "CELLiteEmbedding":   # + its M_0 initial clusters, kept for unseen ids
                used = torch.cat([used, torch.arange(emb.params.m0)])
            return int(torch.unique(used).numel()) + own, emb.assign.numel()
        if isinstance(emb, ClusterRegularizedEmbedding):
            if torch.equal(emb.table(), emb.weight):   # 100 %: the leaves themselves, no index
                return emb.weight.shape[0], 0
            used = torch.unique(emb.table(), dim=0).shape[0]
            assert used <= emb.parents.shape[0]        # the entities share the parents' rows
            return emb.parents.shape[0], emb.assign.numel()
        if isinstance(emb, (ModuloEmbedding, BHEmbedding)):   # rows computed from the id: no index
            return emb.weight.shape[0], 0
        if isinstance(emb, AEEmbedding):               # the warm ids: entities alone on their row
            return emb.weight.shape[0], int((torch.bincount(emb.rows) == 1).sum())
        if isinstance(emb, HashGNNEmbedding):          # one code per entity
            return emb.weight.shape[0], emb.rows.numel()
        if isinstance(emb, QREmbedding):               # two small tables, in rows of R numbers
            return -(-(emb.remainder.numel() + emb.quotient.numel()) // R), 0
        if isinstance(emb, CERPEmbedding):             # the nonzeros left by the test-time pruning
            return max(1, -(-int((emb.effective_table() != 0).sum()) // R)), 0
        if isinstance(emb, PreHashEmbedding):          # anchors' bucket ids; others: their mixtures
            anchors = int((emb.anchor_bucket >= 0).sum())
            idx, w = emb.mixture(torch.nonzero(emb.anchor_bucket < 0).squeeze(1))
            per = w.shape[-1] if w.shape[-1] == emb.weight.shape[0] else 2 * w.shape[-1]   # all: weights only
            return emb.weight.shape[0], anchors + (emb.num_entities - anchors) * per
    raise AssertionError(f"no independent size count for {type(emb).__name__}: add one")


def _expected_rows(name, compression, kw):
    """Stored rows by each method's formula at M = 200 (None: BH, QR, CERP follow their own rule,
    checked in their test files)."""
    budget = max(1, round(compression / 100 * M))     # M_q
    if name == "full" or (name in ("etree", "jnkm") and compression == 100):
        return M
    if name in ("modulo", "ae", "prehash", "etree", "jnkm") or (name == "cel" and not kw.get("split", True)):
        return budget
    if name == "cel":
        return 1                                       # M_0 = 1 before any split
    if name == "hashgnn":
        return 2 ** int(math.floor(math.log2(budget)))
    return None


@pytest.mark.parametrize("name, compression, kw", CASES)
def test_num_parameters_matches_compression(name, compression, kw):
    emb = _build(name, compression, **kw)
    budget = max(1, round(compression / 100 * M))          # M_q
    rows, index = stored_size(emb)
    assert emb.embedding_rows() == rows
    assert emb.index_entries() == index
    assert emb.num_parameters() == rows * R + index
    if _expected_rows(name, compression, kw) is not None:
        assert rows == _expected_rows(name, compression, kw)
    if emb.may_exceed_budget:                              # BH, QR: their rule may store more (D.1)
        assert rows >= budget
    else:
        assert 1 <= rows <= budget
    assert 0 <= index <= M * budget                        # PreHash K = M_q: M_q weights per entity
    with torch.no_grad(), test_time(emb):                  # what is stored does not depend on the mode
        assert emb.embedding_rows() == rows
        used = torch.unique(emb.table(), dim=0).shape[0]
    if not emb.may_exceed_budget and name not in ("prehash", "cerp", "qr"):
        assert used <= rows                                # hard sharing: at most the stored rows


@pytest.mark.parametrize("name, compression, kw", CASES)
def test_deterministic_with_seed(name, compression, kw):
    a, b, c = (_build(name, compression, seed, **kw) for seed in (3, 3, 4))
    assert torch.equal(a.table(), b.table())
    assert not torch.equal(a.table(), c.table())
    with torch.no_grad(), test_time(a, b):
        assert torch.equal(a.table(), b.table())


def test_init_in_unit_range():
    t = _build("full", 100.0).table()
    assert t.abs().max().item() == pytest.approx(1.0)


def test_full_rejects_compression():
    with pytest.raises(ValueError, match="compression must be 100"):
        _build("full", 5.0)
