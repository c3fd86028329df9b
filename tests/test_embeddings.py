"""One parametrised test over every registered embedding method (and its named variants).

Each method is built as the run driver builds it: constructed, then handed the training fold
(``DataAware``: AE, PreHash, HashGNN), its own periodic update started (``StepAware``: eTree,
JNKM). Checked for every one: output shapes in training and at test time, that backward reaches
the parameters, that the stored size matches the compression, and determinism with a seed.
"""
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
            "bh": [{"pooling": "mean"}, {}], "qr": [{"op": "mult"}, {"op": "concat"}]}


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


@pytest.mark.parametrize("name, compression, kw", CASES)
def test_num_parameters_matches_compression(name, compression, kw):
    emb = _build(name, compression, **kw)
    budget = max(1, round(compression / 100 * M))          # M_q
    rows = emb.embedding_rows()
    if emb.may_exceed_budget:                              # BH, QR: their rule may store more (D.1)
        assert rows >= budget
    else:
        assert 1 <= rows <= budget
    assert emb.num_parameters() == rows * R + emb.index_entries()
    assert 0 <= emb.index_entries() <= M * budget          # PreHash K = M_q: M_q weights per entity
    if compression == 100:
        assert rows == M
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
