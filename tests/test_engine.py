"""The engine: Tasks (scores, directions), Feeds (batches, history, stream order, interactions of
an entity), the one Trainer across feeds (CEL schedule included) and checkpoint/resume."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from cel.config import TrainConfig
from cel.embeddings.cel import CELEmbedding, CELParams
from cel.embeddings.full import FullEmbedding
from cel.metrics import auc
from cel.models.base import InteractionModel
from cel.models.nmf import NMF
from cel.train.feeds import BatchContext, FeedConfig, InteractionTable, make_batch, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.schedule import ClusterSchedule
from cel.train.tasks import TASKS, Conversion, Regression, higher_is_better
from cel.train.trainer import Callback, Trainer


# -- tasks ----------------------------------------------------------------------------------------
def brute_auc(s, y):
    pos, neg = [a for a, b in zip(s, y) if b], [a for a, b in zip(s, y) if not b]
    return sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)) / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 4, 40).astype(float)          # few distinct scores: many ties
    y = rng.random(40) < 0.4
    assert auc(torch.tensor(s), torch.tensor(y, dtype=torch.float32)) == pytest.approx(brute_auc(s, y))


def test_auc_of_a_hand_case():
    # positives 0.4, 0.8; negatives 0.1, 0.4: pairs 1 + 0.5 + 1 + 1 = 3.5 of 4
    assert auc(torch.tensor([0.1, 0.4, 0.4, 0.8]), torch.tensor([0.0, 1.0, 0.0, 1.0])) == 0.875


def test_tasks_say_which_direction_is_better():
    assert not Regression().higher_is_better and Conversion().higher_is_better
    assert Conversion().better(0.8, 0.7) and Regression().better(0.7, 0.8)
    assert higher_is_better("test_auc") and not higher_is_better("val_logloss") and not higher_is_better("test_mse")
    with pytest.raises(KeyError, match="ndcg"):
        higher_is_better("test_ndcg")
    assert set(TASKS) == {"regression", "conversion"}


def test_conversion_labels_and_metrics():
    t = Conversion(threshold=4.0)
    y = t.labels(torch.tensor([1.0, 3.0, 4.0, 5.0]))
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0]
    m = t.metrics(torch.tensor([-2.0, -1.0, 1.0, 2.0]), y)
    assert m["auc"] == 1.0 and m["logloss"] == pytest.approx(float(np.mean(np.log1p(np.exp(-np.array([2.0, 1.0, 1.0, 2.0]))))))


# -- feeds ------------------------------------------------------------------------------------------
def _frame(N=20, M=15, D=120, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.choice(N * M, D, replace=False)
    return pd.DataFrame({"user": codes // M, "item": codes % M, "rating": rng.integers(1, 6, D).astype(float),
                         "timestamp": rng.permutation(D) * 10})


def _table(**kw):
    return InteractionTable.from_frame(_frame(**kw), 20, 15, Regression().labels)


def test_table_is_sorted_once_by_user_then_item():
    t = _table()
    key = t.users * 100 + t.items
    assert torch.equal(key, torch.sort(key).values)


def test_minibatch_epochs_cover_every_interaction_once_and_resume_exactly():
    t = _table()
    feed = make_feed(FeedConfig("minibatch", batch_size=32), t, seed=3)
    it = feed.batches()
    first_epoch = [next(it) for _ in range(feed.steps_per_epoch)]
    rows = torch.cat([b.users * 100 + b.items for b in first_epoch])
    assert sorted(rows.tolist()) == sorted((t.users * 100 + t.items).tolist())
    assert first_epoch[0].scale == pytest.approx(len(t) / 32)          # D/B: an unbiased Eq. 1
    assert first_epoch[0].reg_scale == pytest.approx(1.0)               # ... with Eq. 8 as in full batch
    mean = make_feed(FeedConfig("minibatch", batch_size=32, loss="mean"), t, seed=3)
    assert mean.scale(32) == pytest.approx((1 / 32, 1 / len(t)))       # the same objective divided by D
    nxt = [next(it) for _ in range(3)]
    state = dict(feed.state)
    later = [next(it).items for _ in range(2)]
    feed2 = make_feed(FeedConfig("minibatch", batch_size=32), t, seed=3)
    feed2.state = state
    it2 = feed2.batches()
    assert all(torch.equal(a, next(it2).items) for a in later)
    assert not torch.equal(nxt[0].items, first_epoch[0].items)


def test_stream_is_chronological_once_and_entity_interactions_grow():
    t = _table()
    feed = make_feed(FeedConfig("stream", batch_size=50), t, seed=0)
    seen, sizes = [], []
    for b in feed.batches():
        sizes.append(len(feed.interactions("item")))        # delivered so far, this batch included
        seen.append(b)
    assert [len(b) for b in seen] == [50, 50, 20]
    order = np.argsort(t.timestamps.numpy(), kind="stable")
    got = torch.cat([b.users * 100 + b.items for b in seen])
    assert torch.equal(got, (t.users * 100 + t.items)[order])
    assert sizes == [50, 100, 120]                          # what the stream has delivered so far
    assert feed.progressive


def test_shuffled_stream_is_one_seeded_permutation_of_every_row():
    t = _table()
    key = t.users * 100 + t.items

    def stream(seed):
        feed = make_feed(FeedConfig("stream", batch_size=50, order="shuffled"), t, seed=seed)
        return torch.cat([b.users * 100 + b.items for b in feed.batches()])

    a, b, c = stream(0), stream(0), stream(1)
    assert torch.equal(a, b)                                # the seed fixes the order
    assert not torch.equal(a, c)
    assert sorted(a.tolist()) == sorted(key.tolist())      # every row exactly once
    order = np.argsort(t.timestamps.numpy(), kind="stable")
    assert not torch.equal(a, key[order])                   # not the time order
    with pytest.raises(Exception, match="feed.order"):
        FeedConfig.from_dict({"kind": "stream", "order": "random"})


def test_entity_interactions_match_the_table():
    t = _table()
    inter = t.entity_interactions("item")
    assert inter.counts().tolist() == torch.bincount(t.items, minlength=15).tolist()
    j = int(torch.argmax(inter.counts()))
    rows = slice(int(inter.crow[j]), int(inter.crow[j + 1]))
    assert sorted(inter.other[rows].tolist()) == sorted(t.users[t.items == j].tolist())


def test_history_is_the_users_earlier_items_masked():
    f = pd.DataFrame({"user": [0, 0, 0, 1], "item": [5, 6, 7, 5], "rating": [4.0] * 4, "timestamp": [30, 10, 20, 5]})
    t = InteractionTable.from_frame(f, 2, 8, Regression().labels)
    ctx = BatchContext(t, history_len=3)
    b = make_batch(t, None, ctx)
    by = {(int(u), int(i)): (h.tolist(), m.tolist()) for u, i, h, m in zip(b.users, b.items, b.history, b.history_mask)}
    assert by[(0, 6)] == ([0, 0, 0], [False, False, False])       # t=10: nothing earlier
    assert by[(0, 7)] == ([0, 0, 6], [False, False, True])        # t=20: item 6
    assert by[(0, 5)] == ([0, 6, 7], [False, True, True])         # t=30: items 6, 7 (oldest first)
    assert by[(1, 5)][1] == [False, False, False]


@pytest.mark.parametrize("t_scale", [1, 10 ** 17])     # 10**17: keys overflow int64, per-user search
def test_history_lookup_equals_a_brute_force_scan(t_scale):
    """The one-searchsorted history end (user, time keys) against a scan per row, with query times
    before, between, equal to and after the training times, users without training rows too."""
    rng = np.random.default_rng(0)
    n = 400
    f = pd.DataFrame({"user": rng.integers(0, 30, n), "item": rng.integers(0, 50, n), "rating": 4.0,
                      "timestamp": rng.integers(5, 60, n) * t_scale})
    f = f.drop_duplicates(["user", "item"])
    t = InteractionTable.from_frame(f, 32, 50, Regression().labels)   # users 30, 31: no rows
    ctx = BatchContext(t, history_len=4)
    assert (ctx._key is None) == (t_scale > 1)
    users = rng.integers(0, 32, 300)
    ts = rng.integers(0, 70, 300) * t_scale
    hist, mask = ctx._history(users, ts)
    tr_u, tr_t, tr_i = t.users.numpy(), t.timestamps.numpy(), t.items.numpy()
    for k, (u, q) in enumerate(zip(users, ts)):
        rows = np.flatnonzero((tr_u == u) & (tr_t < q))              # table order; ties keep it
        want = tr_i[rows[np.argsort(tr_t[rows], kind="stable")]][-4:].tolist()
        assert hist[k][mask[k]].tolist() == want, (u, q)
        assert mask[k].tolist() == [False] * (4 - len(want)) + [True] * len(want)


# -- the one trainer across feeds --------------------------------------------------------------------
class _DotNoFastPath(InteractionModel):
    """A model that asks for history: the batch must carry it, looked up through the item method."""

    history_len = 2

    def forward(self, u, i, history=None, history_mask=None, features=None):
        assert history is not None and history.shape[:2] == history_mask.shape and history.shape[-1] == u.shape[-1]
        return (u * i).sum(-1)


def _trainer(feed_kind="full", method="cel", steps=60, seed=0, model=None, ckpt=None, every=0, **feed_kw):
    g = torch.Generator().manual_seed(seed)
    t = _table(N=20, M=15, D=150)
    ctx = BatchContext(t, history_len=2) if model is not None else None
    ue = FullEmbedding(20, 4, 100.0, FullEmbedding.Params(), g)
    ie = (CELEmbedding(15, 4, 40.0, CELParams(t1=10, t2=3, split_threshold=0), g) if method == "cel"
          else FullEmbedding(15, 4, 100.0, FullEmbedding.Params(), g))
    cbs = [GradientAveraging()] + ([ClusterSchedule("item")] if method == "cel" else [])
    cfg = TrainConfig(lr=0.002, steps=steps, eval_every=10, log_every=10**6, seed=seed, checkpoint_every=every)
    feed = make_feed(FeedConfig(feed_kind, **feed_kw), t, seed, ctx)
    return Trainer(Regression(), feed, model or NMF(), ue, ie, cfg, reg=0.1, callbacks=cbs, log=lambda m: None,
                   checkpoint_path=ckpt)


@pytest.mark.parametrize("feed_kind, kw", [("full", {}), ("minibatch", {"batch_size": 40}), ("stream", {"batch_size": 4})])
def test_cel_trains_and_clusters_with_every_feed(feed_kind, kw):
    t = _trainer(feed_kind, **kw)
    h = t.fit()
    sched = t.callbacks[1]
    assert len(sched.splits) >= 4 and len(sched.moves) >= 1      # splits (t2=3) and reassignment (t1=10) ran
    assert t.item_emb.n_clusters >= 2
    if feed_kind != "stream":                                   # a stream sees new data every batch
        assert np.mean(h.train_loss[-5:]) < np.mean(h.train_loss[:5])
    else:
        assert h.progressive and "progressive_mse" in h.progressive[-1] and h.progressive[-1]["n"] == 150
        sizes = np.diff([0] + [r["n"] for r in h.progressive])             # MSE over the stream =
        batch = np.array([r["batch_mse"] for r in h.progressive])          # size-weighted batch MSEs
        assert h.progressive[-1]["progressive_mse"] == pytest.approx(float((sizes * batch).sum() / sizes.sum()))
        assert [r["step"] for r in h.progressive if "progressive_mse" in r] == list(range(1, 39))   # O(1) each: every step


def test_a_model_asking_for_history_gets_it_in_every_batch():
    t = _trainer("minibatch", method="full", steps=5, model=_DotNoFastPath(), batch_size=16)
    t.fit()                                                     # the model asserts the shapes
    assert t.step == 5


class Killed(Exception):
    pass


class Killer(Callback):
    """Dies after step ``at`` (between steps, like a killed job); a no-op when restored."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, t):
        if t.step == self.at:
            raise Killed()


@pytest.mark.parametrize("feed_kind, kw", [("full", {}), ("minibatch", {"batch_size": 40})])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path, feed_kind, kw):
    ref = _trainer(feed_kind, steps=40, **kw)
    ref.fit()

    a = _trainer(feed_kind, steps=40, ckpt=tmp_path / "c.pt", every=10, **kw)
    a.callbacks.append(Killer(25))
    with pytest.raises(Killed):
        a.fit()
    b = _trainer(feed_kind, steps=40, ckpt=tmp_path / "c.pt", every=10, **kw)
    b.load_checkpoint(tmp_path / "c.pt")
    assert b.step == 20
    b.callbacks = [c for c in b.callbacks if not isinstance(c, Killer)]
    b.fit()
    assert torch.equal(b.item_emb.assign, ref.item_emb.assign)
    assert torch.allclose(b.item_emb.centroids, ref.item_emb.centroids)
    assert torch.allclose(b.user_emb.weight, ref.user_emb.weight)
    assert b.history.loss == ref.history.loss


class _PlainDot(InteractionModel):
    """NMF's prediction without the PairScorer fast path (the generic route)."""

    def forward(self, u, i):
        return (u * i).sum(-1)


@pytest.mark.parametrize("side", ["item", "user"])
def test_schedule_statistics_fast_path_equals_generic_and_brute_force(side):
    t = _trainer("full", steps=3)
    t.fit()
    s = ClusterSchedule(side)
    inter = t.feed.interactions(side)
    g_fast, l_fast = s.entity_grads(t), s.entity_losses(t)
    t.model = _PlainDot()
    g_gen, l_gen = s.entity_grads(t), s.entity_losses(t)
    assert torch.allclose(g_fast, g_gen, atol=1e-5) and torch.allclose(l_fast, l_gen, atol=1e-6)
    own = (t.item_emb if side == "item" else t.user_emb).table().detach()
    other = (t.user_emb if side == "item" else t.item_emb).table().detach()
    j = int(torch.argmax(inter.counts()))
    rows = slice(int(inter.crow[j]), int(inter.crow[j + 1]))
    o, x = other[inter.other[rows]], inter.targets[rows]
    resid = x - o @ own[j]
    assert torch.allclose(g_fast[j], 2 * (resid[:, None] * o).sum(0), atol=1e-4)      # -dL/db_j
    assert float(l_fast[j]) == pytest.approx(float(resid.pow(2).sum()), rel=1e-5)


def test_replay_feed_scores_only_new_rows_and_a_stopped_stream_loses_no_batch():
    """With replay, each step trains on the batch plus buffered rows, but the progressive score
    counts each new interaction once (150 in all over one pass). ``steps`` stops a stream before
    the next batch is pulled, so a second ``fit`` continues with the very next batch."""
    t = _trainer("replay", method="full", steps=60, batch_size=4, passes=1)
    h = t.fit()
    trained = sum(1 for _ in h.step)
    assert h.progressive[-1]["n"] == 150 and trained == 38
    part = _trainer("stream", method="full", steps=10, batch_size=4)
    part.fit()
    assert part.feed.state["pos"] == 40                                  # 10 batches consumed, not 11
    part.cfg = dataclasses.replace(part.cfg, steps=20)
    part.fit()
    assert part.feed.state["pos"] == 80 and part.history.progressive[-1]["n"] == 80


def test_running_scores_equal_the_metrics_over_everything_added():
    """The progressive score's accumulators: regression keeps float64 error sums (O(1) per score,
    not O(seen)), conversion keeps every prediction; both equal the task's metrics on the union."""
    from cel.train.tasks import Conversion, Regression

    g = torch.Generator().manual_seed(0)
    preds = [torch.rand(n, generator=g) * 5 for n in (7, 300, 1)]
    ys = [torch.randint(1, 6, (len(p),), generator=g).float() for p in preds]
    for task, labels in ((Regression(), ys), (Conversion(), [(y >= 4).float() for y in ys])):
        run = task.running()
        for p, y in zip(preds, labels):
            run.add(p, y)
        want = task.metrics(torch.cat(preds), torch.cat(labels))
        got = run.value()
        assert run.n == 308 and got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-12), (task.kind, k)
        run.add(torch.tensor([100.0]), torch.tensor([0.0]))          # a new batch moves the score
        assert run.value()[task.primary] != pytest.approx(want[task.primary], rel=1e-6)
