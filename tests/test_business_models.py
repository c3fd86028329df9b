"""DUPN- and SAML-style business models (issue #16) behind the interaction-model interface.

Model checks that can fail: DUPN's masking of padded history slots (ids, behaviour types, time
gaps), its LSTM seeing the order of the behaviours, its auxiliary rating head never entering the
prediction but adding its gradient; SAML's scenario subspaces, its mutual unit really mixing the
other branches (and not when switched off), masking. Feed: the row features (behaviour type, time
gap, the row's rating) and user features (scenario) a BatchContext attaches. Integration: every
registered embedding method inside both models through the real Trainer, users and items
compressed (CEL-Lite on the replay feed with its own schedule), and SAML beating a single-branch
model on two scenarios with opposite item preferences.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cel.config import TrainConfig
from cel.embeddings import EMBEDDINGS, ClusteredEmbedding, DataAware, TrainingData, test_time
from cel.embeddings.cel_lite import CELLiteEmbedding
from cel.metrics import auc
from cel.models import MODELS
from cel.models.dupn import DUPN, GAP_BUCKETS
from cel.models.saml import SAML, MutualUnit, user_scenarios
from cel.train.feeds import GAP_BUCKETS as FEED_GAP_BUCKETS
from cel.train.feeds import BatchContext, FeedConfig, InteractionTable, make_batch, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.lite_schedule import LiteSchedule
from cel.train.method_steps import MethodSteps
from cel.train.replay_feed import register as register_replay
from cel.train.schedule import ClusterSchedule
from cel.train.tasks import Conversion
from cel.train.trainer import Trainer, predict_all

from shared_fixtures import one_thread, planted_ratings  # noqa: F401 (one_thread: autouse fixture)

B, H, R = 6, 5, 8


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    u, t, h = torch.randn(B, R, generator=g), torch.randn(B, R, generator=g), torch.randn(B, H, R, generator=g)
    n_real = torch.tensor([0, 1, 2, 3, 5, 4])                      # left padding, real slots last
    mask = torch.arange(H)[None, :] >= (H - n_real)[:, None]
    feats = {"history_type": (torch.where(mask, torch.randint(1, 6, (B, H), generator=g), 0), mask),
             "history_gap": (torch.where(mask, torch.randint(1, 20, (B, H), generator=g), 0), mask),
             "scenario": (torch.tensor([[1], [2], [3], [4], [1], [2]]), torch.ones(B, 1, dtype=torch.bool))}
    return u, t, h, mask, feats


def _model(name, **kw):
    torch.manual_seed(0)
    m = MODELS[name](**kw)
    m(*_inputs()[:4])                                             # materialise lazy parameters
    return m


# -- interface --------------------------------------------------------------------------------------
def test_registered_with_the_run_drivers_constructor_convention():
    assert MODELS["dupn"] is DUPN and MODELS["saml"] is SAML
    for name in ("dupn", "saml"):
        for nonneg in ("abs", "clamp", "none"):
            MODELS[name](nonneg=nonneg)
        with pytest.raises(ValueError, match="nonneg"):
            MODELS[name](nonneg="square")
        assert MODELS[name].history_len == 20 and MODELS[name](history_len=7).history_len == 7
    assert DUPN.row_features == ("history_type", "history_gap", "rating") and SAML.user_features == ("scenario",)
    assert GAP_BUCKETS == FEED_GAP_BUCKETS


@pytest.mark.parametrize("name", ["dupn", "saml"])
def test_shapes_and_gradients(name):
    m = _model(name)
    u, t, h, mask, feats = _inputs()
    for x in (u, t, h):
        x.requires_grad_(True)
    out = m(u, t, h, mask, feats)
    assert out.shape == (B,)
    assert m(u, t).shape == (B,) and m(u, t, h, mask).shape == (B,)            # no history / features
    out.sum().backward()
    assert u.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
    assert h.grad[mask].abs().sum(-1).gt(0).all()                             # every real slot
    assert torch.equal(h.grad[~mask], torch.zeros_like(h.grad[~mask]))         # no padded slot
    unused = {"heads_.1"} if name == "dupn" else set()                         # the rating head: aux only
    for n, p in m.named_parameters():
        if not any(n.startswith(x) for x in unused):
            assert p.grad is not None, n


# -- DUPN ----------------------------------------------------------------------------------------------
def test_dupn_padded_slots_change_nothing():
    m = _model("dupn")
    u, t, h, mask, feats = _inputs()
    base = m(u, t, h, mask, feats)
    h2 = torch.where(mask[..., None], h, torch.randn(B, H, R) * 10)
    f2 = dict(feats)
    f2["history_type"] = (torch.where(mask, feats["history_type"][0], 7), mask)
    f2["history_gap"] = (torch.where(mask, feats["history_gap"][0], 30), mask)
    assert torch.allclose(m(u, t, h2, mask, f2), base, atol=1e-6)
    assert torch.allclose(m(u, t, h, mask, feats)[0], m(u, t)[0])              # row 0: no real slot = no history
    h3 = h.clone()
    h3[2, -1] += 1.0                                                            # a real slot of row 2
    out = m(u, t, h3, mask, feats)
    assert not torch.isclose(out[2], base[2]) and torch.allclose(out[3:], base[3:]) and torch.allclose(out[:2], base[:2])


def test_dupn_behaviour_properties_enter_the_attention():
    m = _model("dupn")
    u, t, h, mask, feats = _inputs()
    base = m(u, t, h, mask, feats)
    for key in ("history_type", "history_gap"):
        f2 = dict(feats)
        f2[key] = (torch.where(mask, (feats[key][0] % 5) + 1, 0), mask)
        assert not torch.allclose(m(u, t, h, mask, f2)[4], base[4])


def test_dupn_lstm_sees_the_order_of_behaviours():
    """Reversing the real slots changes the prediction (a bag of items would not)."""
    m = _model("dupn")
    u, t, h, mask, feats = _inputs()
    feats = {k: v for k, v in feats.items() if not k.startswith("history_")}    # only the order of items
    row = 4                                                                     # 5 real slots
    rev = h.clone()
    rev[row] = h[row].flip(0)
    a, b = m(u, t, h, mask, feats), m(u, t, rev, mask, feats)
    assert not torch.isclose(a[row], b[row], atol=1e-5)
    states = m.encode(h, mask)
    assert torch.equal(states[~mask], torch.zeros_like(states[~mask]))
    one = m.encode(h[2:3, -2:], mask[2:3, -2:])                                 # row 2 without its padding
    assert torch.allclose(states[2, -2:], one[0], atol=1e-6)                    # padding never entered the LSTM


def test_dupn_rating_head_is_an_auxiliary_loss_only():
    m = _model("dupn", aux_weight=0.5)
    u, t, h, mask, feats = _inputs()
    r = torch.randint(1, 6, (B, 1))
    with_r = {**feats, "rating": (r, torch.ones(B, 1, dtype=torch.bool))}
    garbage = {**feats, "rating": (6 - r, torch.ones(B, 1, dtype=torch.bool))}
    with torch.no_grad():
        assert torch.equal(m(u, t, h, mask, with_r), m(u, t, h, mask, feats))
    assert torch.equal(m(u, t, h, mask, with_r), m(u, t, h, mask, garbage))   # the rating never enters the value
    y = m.heads(u, t, h, mask, feats)
    want = 0.5 * (y[:, 1] - r[:, 0].float()).pow(2).mean()
    m.zero_grad()
    m(u, t, h, mask, with_r).sum().backward()
    assert m.last_aux == pytest.approx(float(want.detach()), rel=1e-5)
    g_aux = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    assert g_aux["heads_.1.0.weight"].abs().sum() > 0                          # the rating head learns
    m.zero_grad()
    (m.heads(u, t, h, mask, feats)[:, 0].sum() + want).backward()               # = main loss + aux loss
    for n, p in m.named_parameters():
        if p.grad is not None:
            assert torch.allclose(g_aux[n], p.grad, atol=1e-6), n


def test_dupn_shares_the_user_representation():
    m = _model("dupn")
    u, t, h, mask, feats = _inputs()
    y = m.heads(u, t, h, mask, feats)
    assert y.shape == (B, 2) and torch.allclose(y[:, 0], m(u, t, h, mask, feats))


# -- SAML ----------------------------------------------------------------------------------------------
def test_saml_scenarios_select_subspace_and_branch():
    m = _model("saml")
    u, t, h, mask, feats = _inputs()
    base = m(u, t, h, mask, feats)
    other = {**feats, "scenario": (feats["scenario"][0] % 4 + 1, feats["scenario"][1])}
    assert not torch.allclose(m(u, t, h, mask, other), base)
    unknown = {**feats, "scenario": (torch.zeros(B, 1, dtype=torch.int64), feats["scenario"][1])}
    assert torch.allclose(m(u, t, h, mask, unknown), m(u, t, h, mask, None), atol=1e-6)    # uniform mixture
    with pytest.raises(ValueError, match="scenario id 5"):
        m(u, t, h, mask, {"scenario": (torch.full((B, 1), 5), torch.ones(B, 1, dtype=torch.bool))})


def test_saml_padded_slots_change_nothing():
    m = _model("saml")
    u, t, h, mask, feats = _inputs()
    h2 = torch.where(mask[..., None], h, torch.randn(B, H, R) * 10)
    assert torch.allclose(m(u, t, h2, mask, feats), m(u, t, h, mask, feats), atol=1e-6)


def test_mutual_unit_mixes_the_other_branches():
    unit = MutualUnit(4)
    W = unit.similarity()
    assert torch.allclose(W.sum(1), torch.ones(4)) and torch.equal(W.diagonal(), torch.zeros(4))
    hb = torch.randn(3, 4, 5)
    out = unit(hb)
    gate = torch.sigmoid(unit.gate)
    assert torch.allclose(out[:, 1], hb[:, 1] + gate[1] * torch.einsum("k,bkd->bd", W[1], hb), atol=1e-6)
    for mutual, changes in ((True, True), (False, False)):
        m = _model("saml", mutual=mutual)
        u, t, h, mask, feats = _inputs()
        rows = feats["scenario"][0][:, 0] != 3                                 # rows not in scenario 3
        base = m(u, t, h, mask, feats)
        with torch.no_grad():
            m.branch_in[2] += torch.randn_like(m.branch_in[2])                  # change branch 3 only
            m.branch_b[2] += 1.0
        out = m(u, t, h, mask, feats)
        assert (not torch.allclose(out[rows], base[rows])) == changes
        assert not torch.allclose(out[~rows], base[~rows])                     # its own rows always change
    m = _model("saml")
    m(*_inputs()[:4], _inputs()[4]).sum().backward()
    assert m.mutual.codes.grad.abs().sum() > 0 and m.mutual.gate.grad.abs().sum() > 0   # similarity is learned


def test_user_scenarios_from_u_user(tmp_path):
    import zipfile
    path = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ml-100k/u.user", "2|53|F|other|94043\n1|24|M|technician|85711\n3|25|M|writer|32067\n"
                                     "4|44|M|x|1\n5|45|F|y|2\n")
    ids, mask = user_scenarios(path, 5)
    assert ids[:, 0].tolist() == [1, 4, 2, 3, 4] and mask.all()               # raw id order; <25, 25-34, 35-44, >=45
    with pytest.raises(ValueError, match="5 users"):
        user_scenarios(path, 6)


# -- feed: row and user features ------------------------------------------------------------------------
def test_batch_context_row_and_user_features():
    frame = pd.DataFrame({"user": [0, 0, 0, 1, 1], "item": [3, 1, 2, 0, 2], "rating": [5.0, 2.0, 4.0, 3.0, 1.0],
                          "timestamp": [0, 3600, 7 * 3600, 10, 20]})
    table = InteractionTable.from_frame(frame, 2, 4, Conversion().labels)
    scen = (torch.tensor([[2], [3]]), torch.ones(2, 1, dtype=torch.bool))
    ctx = BatchContext(table, 3, {}, {"scenario": scen}, ("history_type", "history_gap", "rating"))
    b = make_batch(table, None, ctx)                       # table order: sorted by (user, item)
    k = [(int(u), int(i)) for u, i in zip(b.users, b.items)].index((0, 2))  # user 0 at 7h: history items 3, 1
    assert b.history[k].tolist() == [0, 3, 1] and b.history_mask[k].tolist() == [False, True, True]
    assert b.features["history_type"][0][k].tolist() == [0, 5, 2]
    # gaps 7h and 6h: 1 + floor(log2(1 + hours)) = 4 and 3
    assert b.features["history_gap"][0][k].tolist() == [0, 4, 3]
    assert b.features["rating"][0][:, 0].tolist() == [int(x) for x in table.ratings.tolist()]
    assert b.features["scenario"][0][:, 0].tolist() == [2 if u == 0 else 3 for u in b.users.tolist()]
    assert table.labels.tolist() == [float(x >= 4) for x in table.ratings.tolist()]


# -- through the real Trainer ------------------------------------------------------------------------------
N, M, D, R_T = 60, 80, 1500, 8


def _frame(seed=0) -> pd.DataFrame:
    return planted_ratings(N, M, D, seed, time_step=600)


FAST = {"cel": {"t1": 3, "t2": 2, "split_threshold": 0}, "cel_lite": {"split_threshold": 0, "m": 5}}


def _trainer(model_name, method="full", steps=6, seed=0, frame=None, scen=None, lr=5e-3, n=(N, M), **model_kw):
    register_replay()
    task = Conversion()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    frame = _frame() if frame is None else frame
    n_users, n_items = n
    table = InteractionTable.from_frame(frame, n_users, n_items, task.labels)
    model = MODELS[model_name](nonneg="none", **model_kw)
    scen = scen if scen is not None else (torch.arange(n_users)[:, None] % 4 + 1, torch.ones(n_users, 1, dtype=torch.bool))
    users = {"scenario": scen} if "scenario" in getattr(model, "user_features", ()) else {}
    ctx = BatchContext(table, model.history_len, {}, users, getattr(model, "row_features", ()))
    cls = EMBEDDINGS[method]
    cr = 100.0 if method == "full" else 10.0
    params = cls.Params(**FAST.get(method, {}))
    ue, ie = cls(n_users, R_T, cr, params, g), cls(n_items, R_T, cr, params, g)   # both sides compressed
    col = {c: torch.tensor(frame[c].to_numpy()) for c in ("user", "item", "rating")}
    for emb, own, other, a, b in ((ue, "user", "item", n_users, n_items), (ie, "item", "user", n_items, n_users)):
        if isinstance(emb, DataAware):
            emb.fit_data(TrainingData(col[own].long(), col[other].long(), col["rating"].float(), a, b))
    lite = isinstance(ie, CELLiteEmbedding)
    cbs = [GradientAveraging(), MethodSteps()]
    for side, emb in (("user", ue), ("item", ie)):
        if isinstance(emb, ClusteredEmbedding):
            cbs.append(LiteSchedule(side, seed) if lite else ClusterSchedule(side))
    cfg = TrainConfig(optimizer="adam", lr=lr, steps=steps, eval_every=10**6, log_every=10**6, seed=seed)
    feed_cfg = FeedConfig("replay", batch_size=128, buffer=5, loss="mean") if lite else \
        FeedConfig("minibatch", batch_size=128, loss="mean")
    feed = make_feed(feed_cfg, table, seed, ctx)
    return Trainer(task, feed, model, ue, ie, cfg, reg=0.0, callbacks=cbs, log=lambda m: None)


@pytest.mark.parametrize("model_name", ["dupn", "saml"])
@pytest.mark.parametrize("method", list(EMBEDDINGS))
def test_every_embedding_method_runs_inside_both_business_models(method, model_name):
    tr = _trainer(model_name, method)
    h = tr.fit()
    assert tr.step == 6 and np.isfinite(h.loss).all()
    if method in ("cel", "cel_lite"):
        assert any(s.splits for s in tr.callbacks if hasattr(s, "splits"))   # clustering ran on this model
    with torch.no_grad(), test_time(tr.user_emb, tr.item_emb):
        pred = predict_all(tr.model, tr.user_emb, tr.item_emb, make_batch(tr.feed.train, None, tr.feed.context))
    assert pred.shape == (D,) and torch.isfinite(pred).all()


@pytest.mark.parametrize("model_name", ["dupn", "saml"])
def test_business_models_learn_conversion(model_name):
    tr = _trainer(model_name, steps=80, lr=1e-2)
    h = tr.fit()
    assert np.mean(h.train_loss[-10:]) < 0.85 * np.mean(h.train_loss[:10])


def test_saml_beats_a_single_branch_model_on_opposite_scenarios():
    """Two scenarios with opposite item preferences: an item of group A converts in scenario 1 and
    not in 2, group B the reverse. Tested on users never seen in training (their embedding is
    untrained), only the scenario tells them apart: SAML uses it, the single-branch model cannot."""
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 400, 40, 12
    scen_of = rng.integers(1, 3, n_users)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            like = (i % 2 == 0) == (scen_of[u] == 1)
            rows.append((u, i, 5.0 if like else 1.0))
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
    frame["timestamp"] = rng.permutation(len(frame)) * 60
    test_users = set(range(300, n_users))
    train = frame[~frame["user"].isin(test_users)].reset_index(drop=True)
    test = frame[frame["user"].isin(test_users)].reset_index(drop=True)
    scen = (torch.as_tensor(scen_of)[:, None], torch.ones(n_users, 1, dtype=torch.bool))
    scores = {}
    for name, kw in (("saml", {"scenarios": 2}), ("single", {"scenarios": 1})):
        s = scen if name == "saml" else (torch.ones(n_users, 1, dtype=torch.int64), scen[1])
        tr = _trainer("saml", steps=150, frame=train, scen=s, lr=1e-2, n=(n_users, n_items), history_len=0, **kw)
        tr.fit()
        tt = InteractionTable.from_frame(test, n_users, n_items, Conversion().labels)
        batch = make_batch(tt, None, BatchContext(tr.feed.train, 0, {}, {"scenario": s}))
        with torch.no_grad():
            pred = predict_all(tr.model, tr.user_emb, tr.item_emb, batch)
        scores[name] = auc(pred, batch.labels)
    assert scores["saml"] > 0.9 and scores["saml"] > scores["single"] + 0.2, scores


# -- the Table 4 analogue's statistics ---------------------------------------------------------------------
def _summary(lite_minus_full: float, seeds=5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(seeds):
        base = 0.70 + rng.normal(0, 0.01)
        for method, cr, auc_, params, clusters in (("full", 100, base, 21000, None),
                                                   ("cel_lite", 1, base + lite_minus_full + rng.normal(0, 0.0005), 2833, (9, 17)),
                                                   ("modulo", 1, 0.5 + rng.normal(0, 0.01), 208, None)):
            for metric, v in (("test_auc", auc_), ("embedding_params", params)):
                rows.append(("conversion", "ml-100k", "online", "dupn", method, cr, 0, s, metric, v))
            if clusters:
                rows += [("conversion", "ml-100k", "online", "dupn", method, cr, 0, s, f"final_clusters_{side}", k)
                         for side, k in zip(("user", "item"), clusters)]
    return pd.DataFrame(rows, columns=["task", "dataset", "variant", "model", "method", "compression", "fold", "seed",
                                       "metric", "value"])


def test_table4_claims_vs_full_and_against_modulo(tmp_path):
    """Both claims of the table4 target, Holm over the table: CEL-Lite at 1% >= full at 100%
    (non-inferiority within 0.001 AUC, the full cell of another column) and CEL-Lite > Modulo at
    1%; the size ratios written beside the table."""
    from cel.tables import TABLES, cell_stats, check_claims, write_table
    from cel.tablespecs.table4 import size_ratios

    spec = TABLES["table4"]

    def claims(lite_minus_full):
        summary = _summary(lite_minus_full)
        stats = cell_stats(summary, spec)
        assert set(stats["n"]) == {5}
        return check_claims(stats, spec, summary).set_index("worse")

    ok, bad = claims(0.002), claims(-0.01)
    assert sorted(ok.index) == ["full", "modulo"] and set(ok["n_pairs"]) == {5}
    vs_full = ok.loc["full"]
    assert vs_full["claim"] == "cel_lite >= full at compression 100" and vs_full["compression"] == "1"
    assert vs_full["ours_worse"] == pytest.approx(100 * _summary(0.002).query(
        "method == 'full' and metric == 'test_auc'")["value"].mean())
    assert bool(vs_full["significant"]) and bool(ok.loc["modulo", "significant"])    # within 0.001; > Modulo
    assert not bool(bad.loc["full", "significant"]) and bad.loc["full", "p_value"] > 0.5
    assert bool(bad.loc["modulo", "holds"])
    sizes = size_ratios(_summary(0.002)).set_index("method")
    assert sizes.loc["cel_lite", "size_ratio_full_over_method"] == pytest.approx(21000 / 2833)
    assert sizes.loc["cel_lite", "table_ratio_full_over_method"] == pytest.approx(21000 / (26 * 8))   # rows alone
    assert sizes.loc["modulo", "table_ratio_full_over_method"] == pytest.approx(21000 / 208)
    write_table(_summary(0.002), "table4", tmp_path / "table4.tex")
    written = pd.read_csv(tmp_path / "table4_sizes.csv", dtype={"compression": str})
    assert sorted(written["method"]) == ["cel_lite", "modulo"]
