"""CEL (Section 3): the tests the algorithm must pass, each able to fail."""
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cel.cluster.criteria import ClusterStats, choose_cluster
from cel.cluster.reassign import cluster_losses, reassign
from cel.cluster.split import (SplitContext, first_principal_component, split_mask, threshold,
                               weighted_quickselect)
from cel.config import TrainConfig, load_config
from cel.embeddings.cel import CELEmbedding, CELParams
from cel.embeddings.full import FullEmbedding
from cel.metrics import adjusted_rand_index
from cel.models.nmf import NMF
from cel.cluster.interactions import EntityInteractions
from cel.models.pairs import PairIndex, sort_pairs
from cel.train.run import execute_run
from cel.train.grad_avg import GradientAveraging
from cel.train.schedule import ClusterSchedule
from cel.train.trainer import Trainer, full_batch_trainer


def _cel(M=40, R=4, compression=25.0, seed=0, **kw):
    return CELEmbedding(M, R, compression, CELParams(**kw), torch.Generator().manual_seed(seed))


def _data(N=30, M=40, D=400, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.choice(N * M, D, replace=False)
    u, i = codes // M, codes % M
    o = sort_pairs(u, i)
    return PairIndex.build(u[o], i[o], N, M), torch.as_tensor(rng.uniform(1, 5, D)[o], dtype=torch.float32)


class _Dot(torch.nn.Module):
    """A dot-product model *without* the fast path, to exercise the generic batched path."""

    def forward(self, u, i):
        return (u * i).sum(-1)


# -- planted clusters ---------------------------------------------------------------------------
@pytest.mark.slow
def test_recovers_planted_clusters(tmp_path):
    K = 6
    prof = {
        "results_dir": str(tmp_path / "r"),
        "datasets": {"p": {"kind": "synthetic", "users": 400, "items": 150, "clusters": K, "rank": 4,
                           "density": 0.25, "noise": 0.1, "popularity": 0.3, "seed": 0}},
        "variants": {"original": {"kind": "original"}}, "models": {"nmf": {"rank": 8}},
        "methods": {"cel": {"t1": 20, "t2": 10}},
        "train": {"optimizer": "gd", "lr": 0.001, "steps": 1500, "eval_every": 50, "log_every": 10**6},
        "grid": [{"datasets": ["p"], "methods": ["cel"], "compressions": [100 * K / 150], "folds": [0]}],
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(prof))
    cfg = load_config(tmp_path / "p.yaml")
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    learned = pd.read_parquet(tmp_path / "run" / "assignments.parquet").sort_values("entity")["cluster"]
    planted = pd.read_parquet(tmp_path / "r" / "data" / "p" / "original" / "items.parquet").sort_values("item")["cluster"]
    assert rec["clusters"]["item"]["final_clusters"] == K
    assert adjusted_rand_index(learned, planted) >= 0.9
    assert rec["metrics"]["test_mse"] < 2.0 * 0.1 ** 2         # noise floor: noise² = 0.01


def test_adjusted_rand_index():
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)
    assert adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) < 0


# -- GPCA ---------------------------------------------------------------------------------------
def test_gpca_separates_two_group_gradient_mixture():
    g = torch.Generator().manual_seed(0)
    v = torch.tensor([3.0, -1.0, 2.0, 0.5])
    labels = torch.arange(60) % 2 == 0
    G = torch.where(labels[:, None], v, -v) + 0.3 * torch.randn(60, 4, generator=g) + 5.0  # offset: centring matters
    ctx = SplitContext(G, torch.ones(60), g, delta="zero", normalize="center")
    mask = split_mask("gpca", ctx)
    assert torch.equal(mask, labels) or torch.equal(mask, ~labels)
    p = first_principal_component(G - G.mean(0))
    assert abs(float(p @ (v / v.norm()))) > 0.99


def test_random_split_does_not_separate_the_mixture():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 2 == 0
    v = torch.tensor([3.0, -1.0, 2.0, 0.5])
    G = torch.where(labels[:, None], v, -v)
    mask = split_mask("random", SplitContext(G, torch.ones(60), g))
    agree = (mask == labels).float().mean()
    assert 0.2 < agree < 0.8 and int(mask.sum()) == 30


@pytest.mark.parametrize("method", ["random_projection", "bisect_gradient", "bisect_user"])
def test_other_splitters_give_two_nonempty_sides(method):
    g = torch.Generator().manual_seed(1)
    G = torch.randn(20, 4, generator=g)
    ctx = SplitContext(G, torch.ones(20), g, reps=lambda: torch.randn(20, 4, generator=g))
    mask = split_mask(method, ctx)
    assert 0 < int(mask.sum()) < 20


def test_thresholds():
    scores = torch.tensor([-3.0, -1.0, 0.5, 2.0, 4.0])
    ctx = SplitContext(torch.zeros(5, 1), torch.tensor([1.0, 1.0, 1.0, 1.0, 10.0]), torch.Generator())
    assert threshold(scores, ctx) == 0.0
    ctx.delta = "median"
    assert threshold(scores, ctx) == 0.5
    ctx.delta = "balanced"   # total weight 14: {<= 2.0} holds 4, so the heavy item stands alone
    d = threshold(scores, ctx)
    assert 2.0 < d <= 4.0


def test_weighted_quickselect_matches_sort():
    rng = np.random.default_rng(0)
    for _ in range(50):
        v, w = rng.normal(size=31), rng.integers(1, 20, size=31).astype(float)
        order = np.argsort(v)
        cum = np.cumsum(w[order])
        expect = v[order][np.searchsorted(cum, w.sum() / 2)]
        assert weighted_quickselect(v, w) == expect


# -- reassignment -------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [NMF(), _Dot()])
def test_reassignment_equals_brute_force_argmin(model):
    pairs, x = _data()
    g = torch.Generator().manual_seed(0)
    A = torch.rand(30, 4, generator=g)
    C = torch.rand(7, 4, generator=g)
    inter = EntityInteractions.from_arrays(pairs.items, pairs.users, x, 40, 30)   # item-major
    L = cluster_losses(model, A, inter, C, "item", chunk_elems=500)
    brute = torch.zeros(40, 7, dtype=torch.float64)
    for j in range(40):
        rows = pairs.items == j
        for k in range(7):
            brute[j, k] = ((x[rows] - A[pairs.users[rows]] @ C[k]) ** 2).sum()
    assert torch.allclose(L.double(), brute, rtol=1e-4, atol=1e-3)
    current = torch.zeros(40, dtype=torch.long)
    new = reassign(L, current, torch.bincount(pairs.items, minlength=40))
    has = torch.bincount(pairs.items, minlength=40) > 0
    assert torch.equal(new[has], brute.argmin(1)[has])


def test_reassignment_drops_empty_clusters():
    e = _cel(M=10, compression=50.0, m0=3)
    before = e.assign.clone()
    moved, mapping = e.reassign(torch.tensor([0, 0, 2, 2, 2, 0, 2, 0, 0, 2]))
    assert e.n_clusters == 2 and mapping[1] == -1
    assert set(e.assign.tolist()) == {0, 1}
    assert moved == int((torch.tensor([0, 0, 2, 2, 2, 0, 2, 0, 0, 2]) != before).sum())


# -- split --------------------------------------------------------------------------------------
def test_split_leaves_predictions_unchanged():
    e = _cel(M=40, compression=50.0, m0=3)
    before = e.table().detach().clone()
    members = int((e.assign == 1).sum())
    mask = torch.arange(members) % 2 == 0
    new = e.split(1, mask)
    assert new == 3 and e.n_clusters == 4
    assert torch.equal(e.table().detach(), before)
    assert int((e.assign == 3).sum()) == int(mask.sum())


def test_choose_cluster_criteria():
    assign = torch.tensor([0, 0, 1, 1, 1, 2])
    counts = torch.tensor([100, 100, 1, 1, 1, 500])
    s = ClusterStats(assign, 3, counts, grads=torch.ones(6, 2), losses=torch.tensor([1.0, 1, 1, 1, 1, 9]))
    assert choose_cluster("interactions", s) == 0        # cluster 2 has one member: not splittable
    assert choose_cluster("entities", s) == 1
    assert choose_cluster("total_loss", s) == 1
    assert choose_cluster("grad_norm", s) == 1


# -- gradient averaging -------------------------------------------------------------------------
def test_gradient_averaging_matches_eq7():
    """Hand case: 3 items, 2 clusters {0, 1} and {2}; dL/dB(j) = e_j-th row of G."""
    e = _cel(M=3, R=2, compression=100.0, m0=2)
    e.set_assignments(torch.tensor([0, 0, 1]), full=torch.zeros(3, 2))
    G = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    (e.table() * G).sum().backward()
    assert torch.equal(e.centroids.grad[:2], torch.tensor([[4.0, 6.0], [5.0, 6.0]]))  # summed
    t = type("T", (), {"item_emb": e, "user_emb": FullEmbedding(2, 2, 100.0, FullEmbedding.Params(),
                                                                torch.Generator()),
                        "reg": 0.0, "batch": type("B", (), {"reg_scale": 1.0})()})()
    GradientAveraging().on_after_backward(t)
    # Eq. (7): divided by |S_q(:, k)| = 2 and 1
    assert torch.equal(e.centroids.grad[:2], torch.tensor([[2.0, 3.0], [5.0, 6.0]]))


@pytest.mark.parametrize("scope", ["loss", "all"])
def test_gradient_averaging_scope_keeps_the_regulariser_whole(scope):
    """D.2 averages the loss of each cluster: with scope 'loss' the Eq. 8 gradient λ·r·θ is not
    divided; with 'all' (the ablation) the whole gradient is."""
    e = _cel(M=3, R=2, compression=100.0, m0=2)
    e.set_assignments(torch.tensor([0, 0, 1]), full=torch.ones(3, 2))       # centroids = 1
    G = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    lam, r = 2.0, 0.5
    ((e.table() * G).sum() + 0.5 * lam * r * e.centroids.pow(2).sum()).backward()
    t = type("T", (), {"item_emb": e, "user_emb": FullEmbedding(2, 2, 100.0, FullEmbedding.Params(),
                                                                torch.Generator()),
                        "reg": lam, "batch": type("B", (), {"reg_scale": r})()})()
    GradientAveraging(scope).on_after_backward(t)
    data, sizes = torch.tensor([[4.0, 6.0], [5.0, 6.0]]), torch.tensor([[2.0], [1.0]])
    expect = data / sizes + lam * r if scope == "loss" else (data + lam * r) / sizes
    assert torch.allclose(e.centroids.grad[:2], expect)


# -- the schedule end to end on the trainer ------------------------------------------------------
def _trainer(params: dict, steps=60, optimizer="gd"):
    pairs, x = _data()
    g = torch.Generator().manual_seed(0)
    ue = FullEmbedding(30, 4, 100.0, FullEmbedding.Params(), g)
    ie = CELEmbedding(40, 4, 25.0, CELParams(**{"split_threshold": 0, **params}), g)   # tiny data: no d
    cfg = TrainConfig(optimizer=optimizer, lr=0.005, steps=steps, eval_every=10, log_every=10**6)
    return full_batch_trainer(NMF(), ue, ie, pairs, x, cfg, reg=1.0,
                            callbacks=[ClusterSchedule("item"), GradientAveraging()], log=lambda m: None)


def test_schedule_splits_to_budget_and_reassigns():
    from cel.train.trainer import Callback

    class ClusterCount(Callback):                           # clusters after each step's schedule
        def __init__(self):
            self.seen = []

        def on_step_end(self, trainer):
            self.seen.append((trainer.step, trainer.item_emb.n_clusters))

    t = _trainer({"t1": 20, "t2": 5})
    count = ClusterCount()
    t.callbacks.append(count)
    t.fit()
    sched = t.callbacks[0]
    # one split every t2 = 5 steps from M_0 = 1 up to the budget (25% of 40 = 10 clusters) at step
    # 45; none at 50, 55, 60: the budget is reached (no reassignment empties a cluster here)
    splits = [s for s, _, _ in sched.splits]
    assert splits == [5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert [s for s, _ in count.seen] == list(range(1, 61))
    assert all(k == 1 + sum(x <= s for x in splits) for s, k in count.seen)   # one cluster per split, only then
    assert sched.splits[0][1:] == (0, 40)                   # the first split divides the one cluster of 40
    assert t.item_emb.n_clusters == t.item_emb.max_clusters == 10
    assert [s for s, _ in sched.moves] == [20, 40, 60]      # a reassignment every t1 = 20 steps
    assert sum(moved for _, moved in sched.moves) > 0
    assert t.item_emb.cluster_sizes().min() >= 1            # no empty cluster kept
    assert int(t.item_emb.cluster_sizes().sum()) == 40
    assert t.history.loss[-1] < t.history.loss[0]


def test_adam_state_follows_split_rows():
    t = _trainer({"t1": 1000, "t2": 5}, steps=5, optimizer="adam")
    t.fit()
    state = t.optimizer[0].state[t.item_emb.centroids]
    parent = t.callbacks[0].splits[0][1]
    assert torch.equal(state["exp_avg"][1], state["exp_avg"][parent])


def test_personalization_unties_and_regularises():
    t = _trainer({"t1": 20, "t2": 5, "personalize_at": 40, "lambda_p": 50.0}, steps=60)
    t.fit()
    e = t.item_emb
    assert e.personal is not None and bool(e.personal_mask.all())
    assert e.embedding_rows() == e.n_clusters + 40
    assert e.penalty() is not None and float(e.penalty().detach()) > 0


def test_personalize_warm_only():
    t = _trainer({"t1": 20, "t2": 5, "personalize_at": 40, "warm_only": 10}, steps=45)
    t.fit()
    counts = torch.bincount(t.feed.train.items, minlength=40)
    assert torch.equal(t.item_emb.personal_mask, counts > 10)


def test_no_split_ablation_starts_at_budget():
    e = _cel(M=40, compression=25.0, split=False)
    assert e.n_clusters == 10 and len(torch.unique(e.assign)) == 10


def test_bad_cel_param_names_the_key():
    from cel.errors import ConfigError

    with pytest.raises(ConfigError, match="split_method"):
        CELParams(split_method="kmeans")


# -- D.1 initial clusters and the split threshold d (A.1) ---------------------------------------
@pytest.mark.parametrize("reading, close", [("abs_mean", True), ("mean", False)])
def test_initial_cel_predictions_match_the_full_models(reading, close):
    """D.1: |full table| first, then each cluster = the centre of its members. The initial mean
    prediction of CEL is then within 10% of the full model's; signed means start near 0."""
    N, M, R = 300, 400, 64
    g = torch.Generator().manual_seed(0)
    users = FullEmbedding(N, R, 100.0, FullEmbedding.Params(), g).weight.detach().abs()
    full = FullEmbedding(M, R, 100.0, FullEmbedding.Params(), torch.Generator().manual_seed(1)).weight.detach().abs()
    cel = _cel(M=M, R=R, compression=5.0, seed=1, init_centroids=reading, split=False)
    items = cel.table().detach().abs()                       # the trainer's constraint (NMF: abs)
    ratio = float((users @ items.T).mean() / (users @ full.T).mean())
    assert (abs(ratio - 1) < 0.10) == close, ratio


def test_split_threshold_keeps_small_clusters_whole():
    assign = torch.tensor([0, 0, 0, 1, 1, 1])
    counts = torch.tensor([50, 50, 50, 100, 60, 60])          # clusters: 150 and 220 interactions
    stats = ClusterStats(assign, 2, counts)
    assert choose_cluster("entities", stats, threshold=0) == 0              # tie on entities: first
    assert choose_cluster("entities", stats, threshold=100) == 1            # 150 <= 2d: not splittable
    assert choose_cluster("interactions", stats, threshold=110) is None     # 220 <= 2d as well
    sched_stats = ClusterStats(torch.zeros(4, dtype=torch.long), 1, torch.tensor([60, 60, 60, 60]))
    assert choose_cluster("interactions", sched_stats, threshold=100) == 0  # 240 > 200


def test_split_threshold_stops_splits_in_training():
    """With d above half of every cluster's interactions the schedule never splits (M_0 = 1 stays),
    with d = 0 it splits to the budget: flipping the switch changes what the model does."""
    t0 = _trainer({"t1": 1000, "t2": 5, "split_threshold": 0}, steps=30)
    t0.fit()
    t1 = _trainer({"t1": 1000, "t2": 5, "split_threshold": 201}, steps=30)   # 400 interactions in all
    t1.fit()
    assert len(t0.callbacks[0].splits) == 6 and t0.item_emb.n_clusters == 7
    assert t1.callbacks[0].splits == [] and t1.item_emb.n_clusters == 1
