"""One parametrised test over every registered embedding method."""
import pytest
import torch

from cel.embeddings import EMBEDDINGS

M, R = 200, 8


def _build(name, compression, seed=0):
    cls = EMBEDDINGS[name]
    return cls(M, R, compression, cls.Params(), torch.Generator().manual_seed(seed))


def _compressions(name):
    return [100.0] if name == "full" else [5.0, 1.0]


CASES = [(n, c) for n in EMBEDDINGS for c in _compressions(n)]


@pytest.mark.parametrize("name, compression", CASES)
def test_shapes_and_backward(name, compression):
    emb = _build(name, compression)
    ids = torch.tensor([[0, 5, 7], [199, 3, 3]])
    out = emb(ids)
    assert out.shape == (2, 3, R)
    assert emb.table().shape == (M, R)
    out.pow(2).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in emb.parameters())


@pytest.mark.parametrize("name, compression", CASES)
def test_num_parameters_matches_compression(name, compression):
    emb = _build(name, compression)
    budget = max(1, round(compression / 100 * M))          # M_q
    if emb.may_exceed_budget:                              # e.g. BH: memory just above M_q (D.1)
        assert emb.embedding_rows() >= budget
    else:
        assert 1 <= emb.embedding_rows() <= budget
    assert emb.num_parameters() == emb.embedding_rows() * R + emb.index_entries()
    assert emb.index_entries() <= M                           # at most one index per entity
    if compression == 100:
        assert emb.embedding_rows() == M


@pytest.mark.parametrize("name, compression", CASES)
def test_deterministic_with_seed(name, compression):
    assert torch.equal(_build(name, compression, 3).table(), _build(name, compression, 3).table())
    assert not torch.equal(_build(name, compression, 3).table(), _build(name, compression, 4).table())


def test_init_in_unit_range():
    t = _build("full", 100.0).table()
    assert t.abs().max().item() == pytest.approx(1.0)


def test_full_rejects_compression():
    with pytest.raises(ValueError, match="compression must be 100"):
        _build("full", 5.0)
