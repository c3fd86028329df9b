"""PreHash's history-based bucket weights (``weights: history``, Appendix D.1 for Table 3) and the
unchanged learned default (Tables 2 and 7): weights from the entity's history, a proper top-K
mixture, gradients into the buckets, the replay feed's buffers feeding h_j after every step."""
import numpy as np
import pytest
import torch

from cel.config import TrainConfig
from cel.embeddings import TrainingData
from cel.embeddings.full import FullEmbedding
from cel.embeddings.prehash import PreHashEmbedding, PreHashHistory, PreHashParams
from cel.errors import ConfigError
from cel.models.nmf import NMF
from cel.train.feeds import FeedConfig, InteractionTable, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.method_steps import MethodSteps
from cel.train.tasks import Conversion
from cel.train.trainer import Trainer
from shared_fixtures import one_thread  # noqa: F401  (autouse: one torch thread)

M, R = 12, 4


def _history_emb(top_k=0, compression=25.0, seed=0, **kw):
    """M = 12, M_q = 3 (25%); the anchors are ids 0..2 (the warmest)."""
    emb = PreHashEmbedding(M, R, compression, PreHashParams(top_k=top_k, weights="history", **kw),
                           torch.Generator().manual_seed(seed))
    ent = torch.repeat_interleave(torch.arange(M), torch.tensor([9, 8, 7] + [1] * (M - 3)))
    emb.fit_data(TrainingData(ent, torch.zeros_like(ent), torch.ones(len(ent)), M, 5))
    return emb


def _observe(emb, entity: int, vectors: torch.Tensor) -> None:
    """Entity's history = the other-side embeddings ``vectors`` (h, R), padded to n = 5 slots."""
    other = torch.zeros(1, 5, R)
    other[0, : len(vectors)] = vectors
    valid = torch.arange(5)[None, :] < len(vectors)
    emb.observe(torch.tensor([entity]), other, valid)


# --- the learned default is the code before weights: history, bit for bit --------------------------

# computed with the code before this change (commit c7500b7), by _learned_outputs below
LEARNED_REFERENCE = (
    {0: {'out': [[[-0.23943138122558594, -0.04464375972747803, -0.158340722322464, 0.049764275550842285],
                  [-0.23929855227470398, -0.04501253738999367, -0.15385480225086212, 0.05058079585433006],
                  [-0.2372613251209259, -0.04428993910551071, -0.15521946549415588, 0.05091438442468643]],
                 [[-0.23560762405395508, -0.04318411275744438, -0.1540517807006836, 0.05014956742525101],
                  [-0.39880838990211487, 0.19238433241844177, 0.4371139705181122, -0.6751418113708496],
                  [-0.23929855227470398, -0.04501253738999367, -0.15385480225086212, 0.05058079585433006]]],
         'table': [[-0.23943138122558594, -0.04464375972747803, -0.158340722322464, 0.049764275550842285],
                   [-0.08120547235012054, 0.13866041600704193, -0.3117448091506958, -0.43455955386161804],
                   [-0.2360040247440338, -0.04157400131225586, -0.14988234639167786, 0.050648465752601624]],
         'theta_grad': [[-0.748725175857544, -1.2461414337158203, 1.6636080741882324, 0.6557338833808899,
                         -0.40803319215774536, 0.08355778455734253],
                        [-1.0674058198928833, -1.4243770837783813, 1.952202320098877, 1.2526624202728271,
                         0.1710958480834961, -0.8841778635978699],
                        [-1.0592751502990723, -1.418099284172058, 1.9364609718322754, 1.2461918592453003,
                         0.17337805032730103, -0.8786566257476807]],
         'usage': [4.009645462036133, 4.005997180938721, 4.0061163902282715, 3.9977664947509766,
                   3.9984898567199707, 3.9819846153259277],
         'weight_grad': [[-5.201825141906738, -1.0253815650939941, 1.9539122581481934, 2.7428488731384277],
                         [-4.405553340911865, -1.40986168384552, 1.0752067565917969, 4.090545177459717],
                         [-4.4055914878845215, -1.4098929166793823, 1.0753196477890015, 4.090644359588623],
                         [-4.396554946899414, -1.4069790840148926, 1.0729612112045288, 4.082145690917969],
                         [-4.39720344543457, -1.4071996212005615, 1.073225736618042, 4.0828537940979],
                         [-4.372683048248291, -1.4002020359039307, 1.0729587078094482, 4.064658164978027]]},
     2: {'out': [[[-0.5272435545921326, -0.11637108027935028, -0.8372595310211182, 0.035029083490371704],
                  [-0.5227339863777161, -0.2761177718639374, -0.35492613911628723, 0.4544520378112793],
                  [-0.25094613432884216, -0.06733537465333939, -0.6550977230072021, -0.30430567264556885]],
                 [[-0.2511461079120636, -0.06757806241512299, -0.6555023193359375, -0.304152250289917],
                  [-0.39880838990211487, 0.19238433241844177, 0.4371139705181122, -0.6751418113708496],
                  [-0.5227339863777161, -0.2761177718639374, -0.35492613911628723, 0.4544520378112793]]],
         'table': [[-0.5272435545921326, -0.11637108027935028, -0.8372595310211182, 0.035029083490371704],
                   [-0.08120547235012054, 0.13866041600704193, -0.3117448091506958, -0.43455955386161804],
                   [-0.3576514720916748, 0.09056631475687027, -0.49273061752319336, -0.09461177885532379]],
         'theta_grad': [[-0.5020784735679626, 0.0, 0.0, 0.0, 0.5020784735679626, 0.0],
                        [0.0, -3.696939468383789, 0.0, 0.0, 3.6969401836395264, 0.0],
                        [0.0, -3.6993889808654785, 0.0, 0.0, 3.6993885040283203, 0.0]],
         'usage': [5.007664680480957, 4.000319480895996, 5.005871772766113, 3.4940266609191895,
                   3.9979724884033203, 2.494145154953003],
         'weight_grad': [[-5.805281639099121, -1.2844526767730713, 2.5434494018554688, 3.657381057739258],
                         [-4.503246784210205, -1.468577265739441, 0.0206601619720459, 3.3908495903015137],
                         [-6.056309700012207, -2.223484516143799, 0.9553971886634827, 5.91909646987915],
                         [-5.060070991516113, -1.8302825689315796, -0.3763667345046997, 4.433526515960693],
                         [-5.028170585632324, -1.5840922594070435, -0.8157179355621338, 3.425668478012085],
                         [-2.494145154953003, -0.831381618976593, 0.831381618976593, 2.494145154953003]]}}
)


def _learned_outputs(top_k):
    M_, R_ = 24, 4
    emb = PreHashEmbedding(M_, R_, 25.0, PreHashParams(top_k=top_k), torch.Generator().manual_seed(7))   # M_q = 6
    ent = torch.tensor([i for i in range(M_) for _ in range((i * 7) % 5 + 1)])
    emb.fit_data(TrainingData(ent, torch.zeros_like(ent), torch.ones(len(ent)), M_, 3))
    ids = torch.tensor([[0, 5, 11], [23, 2, 5]])
    out = emb(ids)
    table = emb.table()
    ((out ** 2).sum() + (table * torch.linspace(-1, 1, R_)).sum()).backward()
    usage = emb.row_usage()[1]
    return {"out": out, "table": table[[0, 7, 19]], "weight_grad": emb.weight.grad,
            "theta_grad": emb.theta.grad[[1, 11, 23]], "usage": usage}


@pytest.mark.parametrize("top_k", [0, 2])
def test_learned_weights_are_unchanged_bit_for_bit(top_k):
    got = _learned_outputs(top_k)
    for name, ref in LEARNED_REFERENCE[top_k].items():
        assert torch.equal(got[name].detach(), torch.tensor(ref, dtype=torch.float32)), name


def test_learned_is_the_default_and_history_draws_the_same_random_state():
    assert PreHashParams().weights == "learned"
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = PreHashEmbedding(M, R, 25.0, PreHashParams(), g1)
    b = PreHashEmbedding(M, R, 25.0, PreHashParams(weights="history"), g2)
    assert torch.equal(a.weight, b.weight)                       # the same buckets
    assert torch.equal(torch.randn(3, generator=g1), torch.randn(3, generator=g2))   # the same state after
    assert a.theta is not None and b.theta is None and [p for p in b.parameters()] == [b.weight]


def test_weights_parameter_is_checked():
    with pytest.raises(ConfigError):
        PreHashParams(weights="histroy")
    with pytest.raises(ConfigError):
        PreHashParams(weights="history", history_scale=0.0)
    with pytest.raises(ConfigError):
        PreHashParams.from_dict({"weights": 1})


# --- history weights ------------------------------------------------------------------------------

@pytest.mark.parametrize("top_k", [0, 2])
def test_weights_follow_the_history(top_k):
    emb = _history_emb(top_k=top_k)
    g = torch.Generator().manual_seed(1)
    A, B = torch.randn(3, R, generator=g), torch.randn(2, R, generator=g)
    _observe(emb, 5, A)
    _observe(emb, 6, B)
    _observe(emb, 7, A)
    (i5, w5), (i6, w6), (i7, w7) = (emb.mixture(torch.tensor(j)) for j in (5, 6, 7))
    assert torch.equal(i5, i7) and torch.equal(w5, w7)                    # same history, same weights
    assert not (torch.equal(i5, i6) and torch.allclose(w5, w6))           # different history, different
    assert torch.equal(emb(torch.tensor(5)), emb(torch.tensor(7)))
    assert not torch.allclose(emb(torch.tensor(5)), emb(torch.tensor(6)))
    before = emb(torch.tensor(5)).detach()
    _observe(emb, 5, B)                                                  # a new history moves it
    assert torch.allclose(emb(torch.tensor(5)), emb(torch.tensor(6)))
    assert not torch.allclose(emb(torch.tensor(5)), before)


def test_no_history_yet_is_a_uniform_mixture_and_anchors_keep_their_bucket():
    emb = _history_emb(top_k=0)
    _observe(emb, 1, torch.randn(2, R))                                  # an anchor with a history
    idx, w = emb.mixture(torch.tensor([1, 9]))
    assert idx[0, 0] == emb.anchor_bucket[1] and w[0].tolist() == [1.0, 0.0, 0.0]
    assert torch.allclose(w[1], torch.full((3,), 1 / 3))                 # entity 9: nothing buffered yet


@pytest.mark.parametrize("top_k", [0, 2])
def test_history_weights_are_a_top_k_softmax_of_cosine_similarities(top_k):
    emb = _history_emb(top_k=top_k, compression=50.0, history_scale=3.0)   # M_q = 6, anchors 0..5
    g = torch.Generator().manual_seed(2)
    hist = {j: torch.randn(1 + j % 4, R, generator=g) for j in range(6, M)}
    for j, v in hist.items():
        _observe(emb, j, v)
    ids = torch.arange(6, M)
    idx, w = emb.mixture(ids)
    K = top_k or 6
    assert idx.shape == w.shape == (len(ids), K)
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(len(ids)))
    assert all(len(set(r.tolist())) == K for r in idx)                   # K distinct buckets
    C = emb.weight.detach()
    for row, j in enumerate(ids.tolist()):                               # by hand
        h = hist[j].mean(0)
        z = 3.0 * (C @ h) / (C.norm(dim=1) * h.norm())
        top = torch.topk(z, K)
        assert set(idx[row].tolist()) == set(top.indices.tolist())       # the K most similar buckets
        want = dict(zip(top.indices.tolist(), torch.softmax(top.values, 0).tolist()))
        got = dict(zip(idx[row].tolist(), w[row].tolist()))
        assert got == pytest.approx(want, abs=1e-6)
        e = sum(want[k] * C[k] for k in want)
        assert torch.allclose(emb(torch.tensor(j)), e, atol=1e-6)
    if top_k == 0:
        assert torch.allclose(emb.table()[ids], emb(ids), atol=1e-6)


@pytest.mark.parametrize("top_k", [0, 2])
def test_gradients_reach_the_buckets_through_the_mixture_and_the_logits(top_k):
    emb = _history_emb(top_k=top_k)
    _observe(emb, 8, torch.randn(3, R, generator=torch.Generator().manual_seed(4)))
    idx, w = emb.mixture(torch.tensor(8))
    g = torch.linspace(-1, 1, R)
    (emb(torch.tensor(8)) * g).sum().backward()
    grad = emb.weight.grad
    assert grad is not None and grad[idx].abs().sum() > 0
    mixture_only = torch.zeros_like(grad).index_add_(0, idx, w.detach()[:, None] * g)
    assert not torch.allclose(grad, mixture_only, atol=1e-6)             # the logits carry gradient too
    emb.weight.grad = None
    (emb(torch.tensor(1)) * g).sum().backward()                          # an anchor: its own row only
    assert torch.equal(emb.weight.grad[emb.anchor_bucket[1]], g)


def test_history_mode_refuses_to_train_unfed():
    emb = _history_emb()
    with pytest.raises(RuntimeError, match="PreHashHistory"):
        emb(torch.tensor([3]))
    emb.eval()
    emb(torch.tensor([3]))                                               # evaluation may (uniform mixtures)


def test_usage_is_kept_incrementally_from_the_last_weights():
    emb = _history_emb(top_k=2, compression=50.0)
    g = torch.Generator().manual_seed(6)
    for j in range(6, M):
        _observe(emb, j, torch.randn(2, R, generator=g))
    _, usage = emb.row_usage()
    idx, w = emb.mixture(torch.arange(M))
    assert torch.allclose(usage, torch.zeros(6).index_add_(0, idx.reshape(-1), w.reshape(-1)), atol=1e-5)
    assert usage.sum().item() == pytest.approx(M)                        # every entity weighs 1 in all


# --- the trainer callback on the replay feed ---------------------------------------------------------

N_USERS, N_ITEMS = 20, 16


def _stream(n=120, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.choice(N_USERS * N_ITEMS, n, replace=False)
    u, i = torch.as_tensor(codes // N_ITEMS), torch.as_tensor(codes % N_ITEMS)
    y = torch.as_tensor(rng.integers(0, 2, n), dtype=torch.float32)
    return InteractionTable(u, i, y, torch.as_tensor(rng.permutation(n)), N_USERS, N_ITEMS)


class _Check:
    """Around PreHashHistory on every step (``before`` runs ahead of it, ``after`` behind it): the
    batch's entities get the mean of the other side's embeddings, as they were after the step and
    before any refresh, over their buffered interactions; every other h_j stays as it was."""

    def __init__(self):
        self.want, self.steps, self.entities = {}, 0, 0
        check = self

        class Before:
            def on_fit_start(self, t): ...
            def on_after_backward(self, t): ...
            def on_eval(self, t, metrics): ...
            def on_fit_end(self, t): ...
            def ready(self, t): return True
            def on_step_end(self, t): check.before(t)

        self.hook_before = Before()

    def on_fit_start(self, t): ...
    def on_after_backward(self, t): ...
    def on_eval(self, t, metrics): ...
    def on_fit_end(self, t): ...
    def ready(self, t): return True

    def sides(self, t):
        b = t.batch.fresh
        return (("user", t.user_emb, t.item_emb, t.batch.users[:b]),
                ("item", t.item_emb, t.user_emb, t.batch.items[:b]))

    def before(self, t):
        for side, emb, other, ids in self.sides(t):
            ent = torch.unique(ids)
            _, o, _, valid = t.feed.buffer.padded(side, ent)
            want = (other(o) * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp_min(1)
            self.want[side] = (ent, want, valid.sum(1), emb.history.clone())

    def on_step_end(self, t):
        for side, emb, _, _ in self.sides(t):
            ent, want, n, prev = self.want[side]
            assert torch.allclose(emb.history[ent], want, atol=1e-6)
            assert torch.equal(emb.history_len[ent], n)
            rest = torch.ones(emb.num_entities, dtype=torch.bool)
            rest[ent] = False
            assert torch.equal(emb.history[rest], prev[rest])
            idx, w = emb.mixture(ent)
            assert torch.equal(emb._hist_idx[ent], idx) and torch.allclose(emb._hist_w[ent], w)
            self.entities += len(ent)
        self.steps += 1


def _trainer(callbacks, table=None):
    table = table if table is not None else _stream()
    feed = make_feed(FeedConfig(kind="replay", batch_size=16, buffer=3, passes=1), table, 0)
    g = torch.Generator().manual_seed(0)
    ue = PreHashEmbedding(N_USERS, 4, 25.0, PreHashParams(weights="history"), g)
    ie = PreHashEmbedding(N_ITEMS, 4, 25.0, PreHashParams(top_k=2, weights="history"), g)
    for emb, own, other, n in ((ue, table.users, table.items, N_USERS), (ie, table.items, table.users, N_ITEMS)):
        emb.fit_data(TrainingData(own, other, table.labels, n, 1))
    cfg = TrainConfig(optimizer="adam", lr=0.01, steps=1000, eval_every=10**6, log_every=10**6)
    return Trainer(Conversion(threshold=0.5), feed, NMF("none"), ue, ie, cfg, reg=0.0,
                   callbacks=[GradientAveraging(), MethodSteps(), *callbacks], log=lambda m: None)


def test_callback_feeds_the_history_from_the_replay_buffer_after_every_step():
    t = _trainer([])
    hooks = PreHashHistory.for_embeddings(t.user_emb, t.item_emb)
    assert [h.sides for h in hooks] == [("user", "item")]
    check = _Check()
    t.callbacks += [check.hook_before, *hooks, check]
    before = t.user_emb.weight.detach().clone()
    t.fit()
    assert check.steps == t.step == 8                                    # 120 interactions / 16
    assert not torch.equal(before, t.user_emb.weight)                    # the buckets learned
    assert (t.user_emb.history_len > 0).sum() == len(torch.unique(t.feed.train.users))
    # O(batch): each step refreshes at most the batch's distinct entities, never the whole table
    assert sum(h.refreshed for h in hooks) == check.entities <= t.step * 2 * 16


def test_without_the_callback_a_history_run_fails_loudly():
    with pytest.raises(RuntimeError, match="PreHashHistory"):
        _trainer([]).fit()


def test_the_callback_needs_a_replay_feed_and_history_weights():
    t = _trainer([PreHashHistory()])
    t.feed = make_feed(FeedConfig(kind="minibatch", batch_size=16), t.feed.train, 0)
    with pytest.raises(ConfigError, match="replay"):
        t.fit()
    t = _trainer([PreHashHistory()])
    t.user_emb = FullEmbedding(N_USERS, 4, 100.0, FullEmbedding.Params(), torch.Generator().manual_seed(0))
    with pytest.raises(TypeError):
        t.fit()
    assert PreHashHistory.for_embeddings(PreHashEmbedding(M, R, 25.0, PreHashParams(), torch.Generator()),
                                         t.item_emb)[0].sides == ("item",)
    assert PreHashHistory.for_embeddings(t.user_emb, t.user_emb) == []
    with pytest.raises(ValueError):
        PreHashHistory(("users",))
