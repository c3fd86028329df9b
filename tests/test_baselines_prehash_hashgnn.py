"""PreHash (anchors + learned top-K bucket mixtures) and HashGNN (pretrained binary codes)."""
import math

import pytest
import torch

from cel.errors import ConfigError
from cel.embeddings import EMBEDDINGS, TrainingData
from cel.embeddings.hashgnn import HashGNNEmbedding, mean_adjacency
from cel.embeddings.prehash import PreHashEmbedding
from cel.train.grad_avg import average_shared_gradients

M, R = 40, 4


def _prehash(compression=10.0, seed=0, **kw):
    kw.setdefault("logit_init", 1.0)
    return PreHashEmbedding(M, R, compression, PreHashEmbedding.Params(**kw), torch.Generator().manual_seed(seed))


def _counts_data(counts: torch.Tensor, n_other=5) -> TrainingData:
    items = torch.repeat_interleave(torch.arange(len(counts)), counts)
    return TrainingData(items, torch.zeros_like(items), torch.ones(len(items)), len(counts), n_other)


# --- PreHash ---------------------------------------------------------------------------------------

def test_prehash_warmest_are_anchors_with_their_own_bucket():
    emb = _prehash(top_k=2)                              # M_q = 4
    counts = torch.ones(M, dtype=torch.long)
    counts[[9, 3, 30, 12]] = torch.tensor([50, 7, 7, 6])  # 3 and 30 tie -> 3 first
    emb.fit_data(_counts_data(counts))
    assert emb.anchors().tolist() == [9, 3, 30, 12]
    assert torch.equal(emb(torch.tensor([9, 12])), emb.weight[torch.tensor([0, 3])])
    with pytest.raises(ValueError, match="entities"):
        emb.fit_data(_counts_data(torch.ones(M + 1, dtype=torch.long)))


def test_prehash_top_k_mixture_by_hand():
    emb = _prehash(top_k=2)
    j = 20                                               # not an anchor (anchors: ids 0..3 before fit_data)
    z = emb.params.logit_scale * emb.theta[j].detach()
    top = torch.topk(z, 2)
    w = torch.softmax(top.values, 0)
    want = w[0] * emb.weight[top.indices[0]] + w[1] * emb.weight[top.indices[1]]
    assert torch.allclose(emb(torch.tensor([j]))[0], want.detach(), atol=1e-6)
    idx, weights = emb.mixture(torch.tensor([j, 2]))
    assert idx.shape == (2, 2) and torch.allclose(weights.sum(-1), torch.ones(2))
    assert idx[1, 0] == 2 and weights[1].tolist() == [1.0, 0.0]   # anchor 2 -> its bucket only


def test_prehash_all_buckets_fast_table_equals_forward():
    emb = _prehash(top_k=0)
    assert emb.k == emb.buckets == 4
    assert torch.allclose(emb.table(), emb(torch.arange(M)), atol=1e-6)


def test_prehash_logits_learn_and_are_not_constrained_or_regularised():
    emb = _prehash(top_k=0)
    assert [id(p) for p in emb.embedding_parameters()] == [id(emb.weight)]
    emb.table()[10:].sum().backward()
    assert emb.theta.grad[10:].abs().sum() > 0           # the hash weights get a gradient
    assert emb.theta.grad[:4].abs().sum() == 0           # anchors do not use their logits


def test_prehash_grad_averaging_divides_by_soft_usage():
    emb = _prehash(top_k=2)
    _, usage = emb.row_usage()
    assert usage.sum().item() == pytest.approx(M)        # every entity's weights sum to 1
    assert (usage >= 1).all()                            # the anchor counts 1 on its own bucket
    emb.table().sum().backward()
    raw = emb.weight.grad.clone()
    average_shared_gradients(emb)
    assert torch.allclose(emb.weight.grad, raw / usage[:, None], atol=1e-6)
    assert _prehash(grad_avg=False).row_usage() is None


@pytest.mark.parametrize("top_k, per_entity", [(2, 4), (0, 4)])
def test_prehash_stored_size(top_k, per_entity):
    emb = _prehash(top_k=top_k)                          # M_q = 4: K = 2 -> 2 ids + 2 weights; K = M_q -> 4 weights
    assert emb.embedding_rows() == 4
    assert emb.index_entries() == 4 + (M - 4) * per_entity
    assert emb.num_parameters() == 4 * R + 4 + (M - 4) * per_entity


def test_prehash_bad_params():
    with pytest.raises(ConfigError, match="top_k"):
        PreHashEmbedding.Params(top_k=-1)


def test_prehash_named_variants_in_the_paper_grid():
    from cel.config import load_config

    cfg = load_config("config/config.yaml")
    assert cfg.method_class("prehash_k4") == "prehash" and cfg.method_params("prehash_k4")["top_k"] == 4
    assert cfg.method_class("prehash_kmq") == "prehash" and cfg.method_params("prehash_kmq")["top_k"] == 0


# --- HashGNN -------------------------------------------------------------------------------------

def _two_profile_data(n_items=40, n_users=30, seed=0) -> TrainingData:
    """Items 0..19 are loved (5) and 20..39 disliked (1) by everyone: two obvious hash groups."""
    g = torch.Generator().manual_seed(seed)
    users = torch.arange(n_users).repeat_interleave(n_items)
    items = torch.arange(n_items).repeat(n_users)
    keep = torch.rand(len(users), generator=g) < 0.5
    users, items = users[keep], items[keep]
    ratings = torch.where(items < n_items // 2, 5.0, 1.0)
    return TrainingData(items, users, ratings, n_items, n_users)


def _hashgnn(compression, m=40, seed=0, **kw):
    return HashGNNEmbedding(m, R, compression, HashGNNEmbedding.Params(**kw), torch.Generator().manual_seed(seed))


def test_hashgnn_code_length_fits_the_budget():
    for compression, bits in ((5.0, 1), (10.0, 2), (20.0, 3), (1.0, 0)):
        emb = _hashgnn(compression)                      # M_q = 2, 4, 8, 1 of 40 items
        assert emb.bits == bits and emb.embedding_rows() == 2 ** bits <= emb.budget_rows()
        assert emb.index_entries() == 40                 # one code per entity


def test_hashgnn_pretraining_separates_rating_profiles():
    emb = _hashgnn(5.0, pretrain_epochs=200)             # 1 bit, 2 rows
    emb.fit_data(_two_profile_data())
    loved, disliked = emb.rows[:20], emb.rows[20:]
    purity = max((loved == 0).float().mean() + (disliked == 1).float().mean(),
                 (loved == 1).float().mean() + (disliked == 0).float().mean()) / 2
    assert purity >= 0.9
    assert emb.pretrain_loss[-1] < emb.pretrain_loss[0]


def test_hashgnn_rows_are_the_codes_read_in_binary_and_deterministic():
    a, b = _hashgnn(20.0, pretrain_epochs=30), _hashgnn(20.0, pretrain_epochs=30)
    data = _two_profile_data()
    a.fit_data(data)
    b.fit_data(data)
    assert torch.equal(a.rows, b.rows)
    assert int(a.rows.max()) < 8 and a.used_rows() >= 2
    assert torch.equal(a(torch.tensor([0, 39])), a.weight[a.rows[torch.tensor([0, 39])]])


def test_mean_adjacency_averages_neighbours():
    adj = mean_adjacency(torch.tensor([0, 0, 1]), torch.tensor([0, 2, 1]), 3, 3)
    x = torch.tensor([[1.0], [2.0], [4.0]])
    assert (adj @ x).flatten().tolist() == [2.5, 2.0, 0.0]


def test_hashgnn_registered():
    assert EMBEDDINGS["hashgnn"] is HashGNNEmbedding and EMBEDDINGS["prehash"] is PreHashEmbedding
    assert math.log2(_hashgnn(50.0).embedding_rows()) == 4


@pytest.mark.parametrize("top_k", [2, 0])
def test_prehash_usage_is_taken_from_the_forward_pass_until_the_logits_change(top_k):
    emb = _prehash(top_k=top_k)
    fresh = _prehash(top_k=top_k)
    emb.table()                                          # the trainer's forward pass keeps the usage
    _, cached = emb.row_usage()
    _, recomputed = fresh.row_usage()                    # no forward yet: computed from the mixture
    assert torch.allclose(cached, recomputed, atol=1e-5)
    with torch.no_grad():
        emb.theta.add_(torch.randn(emb.theta.shape, generator=torch.Generator().manual_seed(2)))   # a step
    _, after = emb.row_usage()
    idx, w = emb.mixture(torch.arange(M))
    want = torch.zeros(emb.buckets).index_add_(0, idx.reshape(-1), w.detach().reshape(-1))
    assert torch.allclose(after, want, atol=1e-5) and not torch.allclose(after, cached)
