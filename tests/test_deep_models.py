"""DIN and DeepFM (Section 4, Tables 2-3, Appendix A.1) behind the interaction-model interface.

Model checks: shapes, DIN's masking of padded history slots, its un-normalised attention (no
softmax), the blockwise activation unit equal to the concatenated [h, t, h − t, h ⊙ t] input,
gradients reaching every embedding, DeepFM's FM identity and side-feature pooling, vocabulary
errors, determinism, the ``nonneg`` convention. Integration: every registered embedding method
inside NMF, DIN and DeepFM through the real Trainer (``minibatch`` feed, the run driver's
callbacks), learning on a planted signal, checkpoint/resume.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from cel.config import TrainConfig
from cel.embeddings import EMBEDDINGS, ClusteredEmbedding, DataAware, TrainingData, test_time
from cel.embeddings.full import FullEmbedding
from cel.models import MODELS
from cel.models.deepfm import DeepFM, fm_interactions
from cel.models.din import DIN
from cel.models.side_features import SideFeatures
from cel.train.feeds import BatchContext, FeedConfig, InteractionTable, make_batch, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.method_steps import MethodSteps
from cel.train.run import SIDE_FEATURES
from cel.train.schedule import ClusterSchedule
from cel.train.tasks import Conversion, Regression
from cel.train.trainer import Callback, Trainer, predict_all

from shared_fixtures import one_thread, planted_ratings  # noqa: F401 (one_thread: autouse fixture)

B, H, R = 5, 6, 8


def _inputs(seed=0, B=B, H=H, R=R):
    g = torch.Generator().manual_seed(seed)
    u, t, h = torch.randn(B, R, generator=g), torch.randn(B, R, generator=g), torch.randn(B, H, R, generator=g)
    mask = torch.rand(B, H, generator=g) < 0.6
    mask[:, -1] = True                                     # every row has a real slot ...
    mask[0] = False                                        # ... but row 0, which has none
    ids = torch.randint(1, 7, (B, 3), generator=g)
    return u, t, h, mask, {"genre": (ids, torch.rand(B, 3, generator=g) < 0.7)}


def _din(**kw):
    torch.manual_seed(0)
    m = DIN(**kw)
    m(*_inputs()[:4])                                      # materialise the lazy parameters
    return m


# -- shapes and the interface ------------------------------------------------------------------------
def test_registered_with_the_run_drivers_constructor_convention():
    assert MODELS["din"] is DIN and MODELS["deepfm"] is DeepFM
    for name in ("din", "deepfm"):
        for nonneg in ("abs", "clamp", "none"):
            MODELS[name](nonneg=nonneg)                    # accepted, no constraint applied
        with pytest.raises(ValueError, match="nonneg"):
            MODELS[name](nonneg="square")
    p = torch.randn(4, R)
    before = p.clone()
    DIN(nonneg="abs").constrain_(p)
    DeepFM(nonneg="abs").constrain_(p)
    assert torch.equal(p, before)
    assert DIN.history_len == 20 and DIN.side_features == () and DeepFM.side_features == ("genre",)
    assert DIN(history_len=5, side_features=("genre",)).history_len == 5 and DIN.history_len == 20


@pytest.mark.parametrize("b, h, r", [(1, 1, 4), (7, 3, 8), (3, 20, 64)])
def test_output_shapes(b, h, r):
    u, t, hist, mask, feats = _inputs(B=b, H=h, R=r)
    assert DIN()(u, t, hist, mask).shape == (b,)
    assert DIN(side_features=("genre",))(u, t, hist, mask, feats).shape == (b,)
    assert DeepFM()(u, t, feats).shape == (b,)
    assert DeepFM(side_features=())(u, t).shape == (b,)


# -- DIN ---------------------------------------------------------------------------------------------
def test_padded_history_slots_are_masked_out():
    m = _din()
    u, t, h, mask, _ = _inputs()
    base = m(u, t, h, mask)
    pad, real = torch.nonzero(~mask[1])[0, 0], torch.nonzero(mask[1])[0, 0]
    h2 = h.clone()
    h2[1, pad] = torch.randn(R) * 10                       # a padded slot changes: nothing happens
    assert torch.equal(m(u, t, h2, mask), base)
    h3 = h.clone()
    h3[1, real] = torch.randn(R)                           # a real slot changes: row 1 changes
    out = m(u, t, h3, mask)
    assert not torch.isclose(out[1], base[1]) and torch.equal(out[2:], base[2:])
    assert torch.equal(m.pool(t, h, mask)[0], torch.zeros(R))        # no real slot: empty history
    assert torch.equal(m(u, t, None, None)[:1], base[:1])            # = no history at all


def test_masking_through_the_item_embedding_lookup():
    """History ids at padded positions (the BatchContext writes 0 there) change nothing."""
    g = torch.Generator().manual_seed(1)
    emb = FullEmbedding(30, R, 100.0, FullEmbedding.Params(), g)
    m = _din()
    u, t = torch.randn(2, R), emb(torch.tensor([3, 4]))
    ids = torch.tensor([[0, 0, 5, 6], [0, 7, 8, 9]])
    mask = torch.tensor([[False, False, True, True], [False, True, True, True]])
    base = m(u, t, emb(ids), mask)
    assert torch.equal(m(u, t, emb(torch.tensor([[11, 12, 5, 6], [13, 7, 8, 9]])), mask), base)
    assert not torch.allclose(m(u, t, emb(torch.tensor([[0, 0, 5, 14], [0, 7, 8, 9]])), mask)[0], base[0])


def test_attention_is_not_normalised():
    """Weighted sum pooling without softmax: k copies of the same item pool to k times one copy."""
    m = _din()
    t, e = torch.randn(1, R), torch.randn(1, 1, R)
    one = m.pool(t, e, torch.ones(1, 1, dtype=torch.bool))
    for k in (2, 5):
        many = m.pool(t, e.expand(1, k, R), torch.ones(1, k, dtype=torch.bool))
        assert torch.allclose(many, k * one, rtol=1e-5)
        assert float(many.detach().norm()) == pytest.approx(k * float(one.detach().norm()), rel=1e-5)
    _, t, h, mask, _ = _inputs()
    w = m.attention(h, t, mask)
    assert not torch.allclose(w[mask].sum(), torch.tensor(float(mask.any(1).sum())))   # rows do not sum to 1


def test_activation_unit_equals_the_concatenated_input():
    m = _din()
    _, t, h, mask, _ = _inputs(seed=3)
    a = m.attention
    x = torch.cat([h, t[:, None].expand_as(h), h - t[:, None], h * t[:, None]], -1)    # (B, H, 4R)
    ref = a.out(a.act((x @ a.weight.T + a.bias).reshape(-1, a.hidden))).reshape(B, H)
    assert torch.allclose(a(h, t, mask), torch.where(mask, ref, 0.0), atol=1e-6)
    assert torch.allclose(a(h, t, mask, keys=a.keys(h)), a(h, t, mask))


def test_gradients_reach_user_item_and_history_embeddings():
    m = _din()
    u, t, h, mask, _ = (x.requires_grad_(True) if torch.is_tensor(x) and x.is_floating_point() else x
                        for x in _inputs())
    m(u, t, h, mask).sum().backward()
    for g in (u.grad, t.grad):
        assert g is not None and g.abs().sum() > 0
    assert h.grad[mask].abs().sum(-1).gt(0).all()                     # every real slot
    assert torch.equal(h.grad[~mask], torch.zeros_like(h.grad[~mask]))   # no padded slot
    assert all(p.grad is not None for p in m.parameters())


# -- DeepFM ------------------------------------------------------------------------------------------
def test_fm_identity_equals_pairwise_sum():
    V = torch.randn(4, 5, R)
    ref = sum((V[:, f] * V[:, g]).sum(-1) for f, g in itertools.combinations(range(5), 2))
    assert torch.allclose(fm_interactions(V), ref, atol=1e-5)


def test_deepfm_fields_and_side_feature_pooling():
    torch.manual_seed(0)
    m = DeepFM()
    u, t, _, _, feats = _inputs()
    out = m(u, t, feats)
    V, first = m.field_vectors(u, t, feats)
    assert V.shape == (B, 3, R) and torch.equal(V[:, 0], u) and torch.equal(V[:, 1], t)
    ids, mask = feats["genre"]
    table = m.fields.tables["genre"]
    for b in range(B):
        want = table[ids[b][mask[b]]].mean(0) if mask[b].any() else torch.zeros(R)
        assert torch.allclose(V[b, 2], want, atol=1e-6)
    ids2 = torch.where(mask, ids, torch.randint(1, 7, ids.shape))        # other ids at masked slots
    assert torch.equal(m(u, t, {"genre": (ids2, mask)}), out)
    no_feats = m(u, t)                                                    # absent field: zero vector
    assert torch.allclose(no_feats, m(u, t, {"genre": (ids, torch.zeros_like(mask))}))
    u.requires_grad_(True), t.requires_grad_(True)
    m(u, t, feats).sum().backward()
    assert u.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
    used = torch.unique(ids[mask])
    assert table.grad[used].abs().sum(-1).gt(0).all()
    unused = torch.ones(len(table), dtype=torch.bool)
    unused[used] = False
    assert torch.equal(table.grad[unused], torch.zeros_like(table.grad[unused]))
    assert m.fields.linear["genre"].grad[used].abs().sum() > 0       # first-order weights learn too


def test_vocabulary_is_configured_and_checked():
    u, t, _, _, feats = _inputs()
    with pytest.raises(ValueError, match="side feature 'genre': id 6 .*vocabulary of 4"):
        DeepFM(vocab=4)(u, t, feats)
    assert SideFeatures.vocab_of(feats) == {"genre": 7}
    m = DeepFM(vocab=SideFeatures.vocab_of(feats))
    m(u, t, feats)
    assert m.fields.tables["genre"].shape == (7, R)
    assert DeepFM(side_features=("category", "brand"), vocab={"category": 9, "brand": 5}).fields.vocab == {
        "category": 9, "brand": 5}


@pytest.mark.parametrize("name", ["din", "deepfm"])
def test_fixed_seed_gives_identical_outputs(name):
    u, t, h, mask, feats = _inputs()
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        m = MODELS[name](nonneg="none")
        outs.append(m(u, t, history=h, history_mask=mask, features=feats))
    assert torch.equal(*outs)


# -- through the real Trainer ---------------------------------------------------------------------------
N, M, D, R_T = 60, 80, 1500, 8


def _frame(seed=0) -> pd.DataFrame:
    """Ratings with a planted user and item effect, random times."""
    return planted_ratings(N, M, D, seed)


def _items(seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    genres = ["|".join(f"g{k}" for k in sorted(set(rng.integers(0, 6, rng.integers(0, 4))))) for _ in range(M)]
    return pd.DataFrame({"item": np.arange(M), "genres": genres})


def _trainer(model_name, method="full", params=None, task=None, steps=6, seed=0, lr=5e-3, batch=128):
    task = task or Regression()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    frame = _frame()
    table = InteractionTable.from_frame(frame, N, M, task.labels)
    model = MODELS[model_name](nonneg="abs" if model_name == "nmf" else "none")
    feats = {n: SIDE_FEATURES[n](_items(), M) for n in model.side_features}
    ctx = BatchContext(table, model.history_len, feats)
    cls = EMBEDDINGS[method]
    ue = FullEmbedding(N, R_T, 100.0, FullEmbedding.Params(), g)
    ie = cls(M, R_T, 100.0 if method == "full" else 10.0, cls.Params(**(params or {})), g)
    if isinstance(ie, DataAware):                           # as the run driver's build()
        col = {c: torch.tensor(frame[c].to_numpy()) for c in ("user", "item", "rating")}
        ie.fit_data(TrainingData(col["item"], col["user"], col["rating"].float(), M, N))
    cbs = [GradientAveraging(), MethodSteps()]
    if isinstance(ie, ClusteredEmbedding):
        cbs.append(ClusterSchedule("item"))
    cfg = TrainConfig(optimizer="adam", lr=lr, steps=steps, eval_every=10**6, log_every=10**6, seed=seed)
    feed = make_feed(FeedConfig("minibatch", batch_size=batch), table, seed, ctx)
    return Trainer(task, feed, model, ue, ie, cfg, reg=0.01, callbacks=cbs, log=lambda m: None)


#: parameters that make a method's own schedule act within a few steps (CEL: split every 2 steps,
#: reassign every 3, through the generic model path for DIN and DeepFM); others run as registered
FAST = {"cel": {"t1": 3, "t2": 2, "split_threshold": 0}, "cel_lite": {"split_threshold": 0}}


@pytest.mark.parametrize("model_name", ["nmf", "din", "deepfm"])
@pytest.mark.parametrize("method", list(EMBEDDINGS))
def test_every_embedding_method_runs_inside_every_model(method, model_name):
    tr = _trainer(model_name, method, FAST.get(method))
    h = tr.fit()
    assert tr.step == 6 and np.isfinite(h.loss).all() and np.isfinite(h.train_loss).all()
    if method == "cel":
        sched = tr.callbacks[-1]
        assert sched.splits and sched.moves                # the schedule ran with this model
    ctx = tr.feed.context
    with torch.no_grad(), test_time(tr.user_emb, tr.item_emb):
        pred = predict_all(tr.model, tr.user_emb, tr.item_emb, make_batch(tr.feed.train, None, ctx, with_pairs=True))
    assert pred.shape == (D,) and torch.isfinite(pred).all()


@pytest.mark.parametrize("model_name", ["din", "deepfm"])
def test_deep_models_learn_conversion_and_ratings(model_name):
    for task in (Conversion(threshold=4.0), Regression()):
        tr = _trainer(model_name, task=task, steps=60, lr=1e-2)
        h = tr.fit()
        assert np.mean(h.train_loss[-10:]) < 0.8 * np.mean(h.train_loss[:10])


class _Killed(Exception):
    pass


class _Killer(Callback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, t):
        if t.step == self.at:
            raise _Killed()


@pytest.mark.parametrize("model_name", ["din", "deepfm"])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path, model_name):
    ref = _trainer(model_name, "cel", FAST["cel"], steps=12)
    ref.fit()
    a = _trainer(model_name, "cel", FAST["cel"], steps=12)
    a.checkpoint_path, a.cfg = tmp_path / "c.pt", dataclasses.replace(a.cfg, checkpoint_every=5)
    a.callbacks.append(_Killer(7))
    with pytest.raises(_Killed):
        a.fit()
    b = _trainer(model_name, "cel", FAST["cel"], steps=12)
    b.load_checkpoint(tmp_path / "c.pt")
    b.callbacks = [c for c in b.callbacks if not isinstance(c, _Killer)]
    assert b.step == 5
    b.fit()
    assert b.history.loss == ref.history.loss
    for p, q in zip(b.model.parameters(), ref.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("model_name", ["din", "deepfm"])
def test_a_training_run_is_deterministic(model_name):
    runs = [_trainer(model_name, "cel", FAST["cel"], steps=8).fit().loss for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("model_name", ["din", "deepfm"])
@pytest.mark.parametrize("task, feed", [("regression", {"kind": "minibatch", "batch_size": 64}),
                                        ("conversion", {"kind": "stream", "batch_size": 64})])
def test_the_run_driver_runs_the_deep_models_unchanged(profile_path, tmp_path, model_name, task, feed):
    """``execute_run`` as the workflow calls it: the model built as ``MODELS[name](nonneg=...)``, its
    batch context (history, genre) from the model's class variables, validation, test scoring."""
    from cel.config import load_config
    from cel.runkey import RunKey
    from cel.train.run import execute_run

    cfg = load_config(profile_path(
        models={model_name: {"rank": 6}}, methods={"cel": {"t1": 5, "t2": 3, "split_threshold": 0}},
        tasks={"conversion": {"kind": "conversion", "threshold": 3.0, "feed": feed},
               "regression": {"kind": "regression", "feed": feed}},
        train={"optimizer": "adam", "lr": 0.01, "steps": 30, "eval_every": 10, "log_every": 1000,
               "val_fraction": 0.1},
        grid=[{"tasks": [task], "datasets": ["synth"], "models": [model_name], "methods": ["cel"],
               "compressions": [10], "folds": [0]}]))
    rec = execute_run(cfg, RunKey(task, "synth", "original", model_name, "cel", "10", 0), tmp_path / "run",
                      log=lambda m: None)
    m = rec["metrics"]
    keys = ("test_mse", "val_mse") if task == "regression" else ("test_auc", "test_logloss", "progressive_auc")
    assert all(np.isfinite(m[k]) for k in keys)
    assert rec["clusters"]["item"]["splits"] >= 1


def test_model_options_from_the_config_reach_the_model(profile_path, tmp_path, monkeypatch):
    """``models.<name>.history`` / ``side_features`` build the model; a side field's table is sized
    from the items table; an option the model does not take, or a missing column, names its key."""
    import cel.train.run as run_mod
    from cel.config import load_config
    from cel.errors import ConfigError
    from cel.runkey import RunKey

    def cfg(model, options):
        return load_config(profile_path(
            models={model: {"rank": 6, **options}},
            tasks={"regression": {"kind": "regression", "feed": {"kind": "minibatch", "batch_size": 64}}},
            train={"optimizer": "adam", "lr": 0.01, "steps": 5, "eval_every": 5, "log_every": 1000},
            grid=[{"datasets": ["synth"], "models": [model], "methods": ["full"], "compressions": [100], "folds": [0]}]))

    built = {}
    real = run_mod.build_model
    monkeypatch.setattr(run_mod, "build_model", lambda c, d: built.setdefault("m", real(c, d)))
    run_mod.execute_run(cfg("din", {"history": 3, "side_features": ["genre"]}),
                        RunKey("regression", "synth", "original", "din", "full", "100", 0), tmp_path / "din",
                        log=lambda m: None)
    model = built["m"]
    assert model.history_len == 3 and model.side_features == ("genre",)
    assert model.fields.vocab["genre"] >= 2                               # sized from the items' genres
    with pytest.raises(ConfigError, match=r"models\.nmf"):
        run_mod.execute_run(cfg("nmf", {"history": 5}), RunKey("regression", "synth", "original", "nmf", "full",
                                                                "100", 0), tmp_path / "nmf", log=lambda m: None)
    with pytest.raises(ConfigError, match="brand"):
        run_mod.execute_run(cfg("deepfm", {"side_features": ["brand"]}),
                            RunKey("regression", "synth", "original", "deepfm", "full", "100", 0), tmp_path / "fm",
                            log=lambda m: None)
