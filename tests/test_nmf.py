"""The fast full-batch NMF op and the trainer."""
import numpy as np
import pytest
import torch

from cel.config import TrainConfig
from cel.embeddings.full import FullEmbedding
from cel.models.nmf import NMF
from cel.models.pairs import PairIndex, gather_dot, sort_pairs
from cel.train.trainer import Callback, Trainer, full_batch_trainer


def _random_pairs(n_users=30, n_items=20, d=150, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.choice(n_users * n_items, d, replace=False)
    u, i = codes // n_items, codes % n_items
    order = sort_pairs(u, i)
    return PairIndex.build(u[order], i[order], n_users, n_items), u[order], i[order]


def test_gather_dot_matches_autograd_reference():
    pairs, u, i = _random_pairs()
    A = torch.rand(30, 5, dtype=torch.float64, requires_grad=True)
    B = torch.rand(20, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(len(u), dtype=torch.float64)
    (gather_dot(A, B, pairs) * w).sum().backward()
    gA, gB = A.grad.clone(), B.grad.clone()
    A.grad = B.grad = None
    ref = (A[torch.as_tensor(u)] * B[torch.as_tensor(i)]).sum(1)
    (ref * w).sum().backward()
    assert torch.allclose(gather_dot(A, B, pairs), ref)
    assert torch.allclose(gA, A.grad) and torch.allclose(gB, B.grad)


def test_gather_dot_gradcheck():
    pairs, _, _ = _random_pairs(8, 6, 20)
    A = torch.rand(8, 3, dtype=torch.float64, requires_grad=True)
    B = torch.rand(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: gather_dot(a, b, pairs), (A, B))


def test_pair_index_csr_structure():
    pairs, u, i = _random_pairs()
    dense = pairs.user_csr(torch.ones(len(u))).to_dense()
    expect = torch.zeros(30, 20)
    expect[torch.as_tensor(u), torch.as_tensor(i)] = 1
    assert torch.equal(dense, expect)
    assert torch.equal(pairs.item_csr(torch.arange(len(u), dtype=torch.float32)).to_dense().T,
                       pairs.user_csr(torch.arange(len(u), dtype=torch.float32)).to_dense())


def _trainer(steps=50, optimizer="gd", lr=0.01, callbacks=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs, u, i = _random_pairs()
    A0, B0 = torch.rand(30, 4, generator=g), torch.rand(20, 4, generator=g)
    y = torch.as_tensor((A0[u] * B0[i]).sum(1).numpy(), dtype=torch.float32)
    ue = FullEmbedding(30, 4, 100.0, FullEmbedding.Params(), g)
    ie = FullEmbedding(20, 4, 100.0, FullEmbedding.Params(), g)
    cfg = TrainConfig(optimizer=optimizer, lr=lr, steps=steps, eval_every=10, log_every=10**6)
    return full_batch_trainer(NMF("abs"), ue, ie, pairs, y, cfg, reg=0.0, callbacks=callbacks, log=lambda m: None)


@pytest.mark.parametrize("optimizer, lr", [("gd", 0.01), ("adam", 0.01), ("adagrad", 0.05), ("rmsprop", 0.001)])
def test_trainer_decreases_loss_and_keeps_nonnegativity(optimizer, lr):
    t = _trainer(steps=80, optimizer=optimizer, lr=lr)
    h = t.fit()
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert (t.user_emb.weight >= 0).all() and (t.item_emb.weight >= 0).all()


def test_trainer_is_deterministic():
    a, b = _trainer().fit(), _trainer().fit()
    assert a.loss == b.loss


def test_callback_events_fire_in_order():
    seen = []

    class Spy(Callback):
        def on_fit_start(self, t): seen.append("start")
        def on_after_backward(self, t): seen.append(("bwd", t.item_emb.weight.grad is not None))
        def on_step_end(self, t): seen.append("end")
        def on_fit_end(self, t): seen.append("fit_end")

    _trainer(steps=2, callbacks=[Spy()]).fit()
    assert seen == ["start", ("bwd", True), "end", ("bwd", True), "end", "fit_end"]


def test_diverging_lr_is_reported():
    with pytest.raises(FloatingPointError, match="lower train.lr"):
        _trainer(steps=200, lr=50.0).fit()


def test_nmf_constraint_modes():
    t = torch.tensor([-1.0, 2.0])
    NMF("abs").constrain_(t)
    assert t.tolist() == [1.0, 2.0]
    t = torch.tensor([-1.0, 2.0])
    NMF("clamp").constrain_(t)
    assert t.tolist() == [0.0, 2.0]
    with pytest.raises(ValueError):
        NMF("square")


def test_user_group_gets_its_own_optimizer_and_lr():
    """Tables 13-14: user embeddings with their own optimiser and learning rate."""
    t = _trainer(steps=1)
    t.cfg = TrainConfig(optimizer="gd", lr=0.01, user_optimizer="adam", user_lr=0.5, steps=1)
    opts = t.build_optimizer()
    kinds = {type(o).__name__: o for o in opts}
    assert set(kinds) == {"GD", "Adam"}
    assert kinds["Adam"].param_groups[0]["params"][0] is t.user_emb.weight
    assert kinds["Adam"].param_groups[0]["lr"] == 0.5
    assert kinds["GD"].param_groups[0]["params"][0] is t.item_emb.weight
    assert kinds["GD"].param_groups[0]["lr"] == 0.01
    t.cfg = TrainConfig(optimizer="gd", lr=0.01, user_lr=0.2, steps=1)       # same type: two groups
    (opt,) = t.build_optimizer()
    assert sorted(g["lr"] for g in opt.param_groups) == [0.01, 0.2]
