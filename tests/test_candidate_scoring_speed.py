"""CEL-Lite's candidate scoring in the deep models (issue 12, benchmark): the deduplicated path of
:func:`cel.cluster.lite_scoring.candidate_losses` (each distinct (candidate, other-side) pair
scored once, losses summed by counts) gives the losses of the plain forward pass on every
(entity, candidate, buffered interaction) triple, for DIN, DeepFM, SAML and DUPN, on both sides,
for the conversion and the regression loss. Correctness only; the speed is benchmarks/bench_deep_reassign.py's.
"""
from __future__ import annotations

import pytest
import torch

from cel.cluster import lite_scoring
from cel.cluster.lite_scoring import _grid_losses, _unique_rows, candidate_losses
from cel.models import MODELS
from cel.train.tasks import Conversion, Regression

from shared_fixtures import one_thread  # noqa: F401 (autouse fixture)

R = 8


NAMES = ["din", "deepfm", "saml", "dupn"]


def make_model(name: str, perturb: bool = False, **kw):
    """A materialised model; ``perturb`` moves every parameter off its initial value (zero biases,
    SAML's mutual-unit gates ...), so that each term of the forward pass counts."""
    torch.manual_seed(0)
    if name == "deepfm":
        kw = {"side_features": ("genre",), "vocab": {"genre": 5}, **kw}
    model = MODELS[name](nonneg="none", **kw)
    model(torch.randn(3, R), torch.randn(3, R))                        # materialise the lazy layers
    if perturb:
        with torch.no_grad():
            for p in model.parameters():
                if not isinstance(p, torch.nn.parameter.UninitializedParameter):   # DUPN's attention: history only
                    p.add_(0.3 * torch.randn_like(p))
    return model


def expanded_forward(model, side, other, cand):
    """(E, C, n) the model's plain forward on every (entity, candidate, interaction) row."""
    E, C, _ = cand.shape
    n = other.shape[1]
    o = other[:, None].expand(E, C, n, R).reshape(-1, R)
    c = cand[:, :, None].expand(E, C, n, R).reshape(-1, R)
    with torch.no_grad():
        return (model(o, c) if side == "item" else model(c, o)).reshape(E, C, n)


def plain_losses(model, side, other, cand, y, valid, loss_terms):
    """(E, C) Σ_t valid · ℓ(model(pair), y) with the plain forward on every expanded pair."""
    pred = expanded_forward(model, side, other, cand)
    return (loss_terms(pred, y[:, None].expand_as(pred)) * valid[:, None]).sum(-1)


def clustered_inputs(E, C, n, K_own, K_other, task, seed=0):
    """Candidates and buffered embeddings drawn from small cluster tables (as under CEL-Lite on
    both sides), targets from the task, a random validity mask (some entities empty)."""
    g = torch.Generator().manual_seed(seed)
    own, oth = torch.randn(K_own, R, generator=g), torch.randn(K_other, R, generator=g)
    cand = own[torch.randint(K_own, (E, C), generator=g)]
    other = oth[torch.randint(K_other, (E, n), generator=g)]
    if isinstance(task, Conversion):
        y = (torch.rand(E, n, generator=g) > 0.5).float()
    else:
        y = torch.randint(1, 6, (E, n), generator=g).float() / 1.0
    valid = torch.rand(E, n, generator=g) > 0.3
    valid[0] = False                                                    # an entity with an empty buffer
    return other, cand, y, valid


@pytest.mark.parametrize("task", [Conversion(), Regression()], ids=["conversion", "regression"])
@pytest.mark.parametrize("side", ["item", "user"])
@pytest.mark.parametrize("name", NAMES)
def test_dedup_losses_equal_the_plain_forward(name, side, task):
    model = make_model(name, perturb=name in ("saml", "dupn"))
    other, cand, y, valid = clustered_inputs(E=40, C=11, n=7, K_own=9, K_other=6, task=task)
    ref = plain_losses(model, side, other, cand, y, valid, task.loss_terms)
    grid = _grid_losses(model, side, other, cand, y, valid, task.loss_terms, 1 << 22)
    assert grid is not None                                             # 9 x 6 pairs < 40 x 11 x 7 triples
    got = candidate_losses(model, side, other, cand, y, valid, task.loss_terms)
    block = candidate_losses(model, side, other, cand, y, valid, task.loss_terms, dedup=False)
    small = candidate_losses(model, side, other, cand, y, valid, task.loss_terms, chunk_elems=1)
    for out in (grid, got, block, small):
        assert out.shape == (40, 11)
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(got[0], torch.zeros(11))                         # nothing buffered: zero loss


@pytest.mark.parametrize("side", ["item", "user"])
@pytest.mark.parametrize("name", ["din", "deepfm"])
def test_distinct_rows_fall_back_to_the_block_and_still_match(name, side):
    """Every row distinct: the grid is not smaller than the block, which is scored directly."""
    model, task = make_model(name), Conversion()
    g = torch.Generator().manual_seed(1)
    E, C, n = 5, 4, 6
    other, cand = torch.randn(E, n, R, generator=g), torch.randn(E, C, R, generator=g)
    y, valid = (torch.rand(E, n, generator=g) > 0.5).float(), torch.rand(E, n, generator=g) > 0.2
    assert _grid_losses(model, side, other, cand, y, valid, task.loss_terms, 1 << 22) is None
    got = candidate_losses(model, side, other, cand, y, valid, task.loss_terms)
    assert torch.allclose(got, plain_losses(model, side, other, cand, y, valid, task.loss_terms), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("side", ["item", "user"])
def test_small_chunks_and_models_without_a_fast_path(side):
    """The grid in one-candidate chunks, and a model without ``candidate_scores`` (plain forward
    on the grid's pairs), give the same losses."""
    model, task = make_model("deepfm"), Conversion()

    class Plain(torch.nn.Module):
        def forward(self, *a, **k):
            return model(*a, **k)
    other, cand, y, valid = clustered_inputs(E=30, C=8, n=5, K_own=7, K_other=5, task=task, seed=3)
    ref = plain_losses(model, side, other, cand, y, valid, task.loss_terms)
    for out in (candidate_losses(model, side, other, cand, y, valid, task.loss_terms, chunk_elems=1),
                candidate_losses(Plain(), side, other, cand, y, valid, task.loss_terms)):
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_float_valid_weights_count_as_weights():
    model, task = make_model("din"), Regression()
    other, cand, y, valid = clustered_inputs(E=20, C=6, n=5, K_own=4, K_other=3, task=task, seed=4)
    w = valid.float() * torch.rand(valid.shape, generator=torch.Generator().manual_seed(5))
    ref = plain_losses(model, "item", other, cand, y, w, task.loss_terms)
    assert torch.allclose(candidate_losses(model, "item", other, cand, y, w, task.loss_terms), ref, rtol=1e-5, atol=1e-5)


def test_unique_rows_is_exact_and_detects_collisions(monkeypatch):
    g = torch.Generator().manual_seed(0)
    table = torch.randn(5, R, generator=g)
    table[1] = 0.0
    table[2] = -0.0                                                     # other bits than +0.0: kept apart
    table[3, 0] = float("nan")
    idx = torch.randint(5, (200,), generator=g)
    x = table[idx]
    rows, inv = _unique_rows(x)
    assert len(rows) == 5
    assert torch.equal(rows[inv].view(torch.int32), x.view(torch.int32))
    rows3, inv3 = _unique_rows(x[:, :3])                                # 12-byte rows: int32 bits, widened
    assert len(rows3) == 5 and torch.equal(rows3[inv3].view(torch.int32), x[:, :3].contiguous().view(torch.int32))
    rows64, inv64 = _unique_rows(x.double())
    assert len(rows64) == 5 and torch.equal(rows64[inv64].view(torch.int64), x.double().view(torch.int64))
    monkeypatch.setitem(lite_scoring._MULT, R // 2, torch.zeros(R // 2, dtype=torch.int64))   # every key collides
    assert _unique_rows(x) is None
    model, task = make_model("deepfm"), Conversion()                    # ... and the losses fall back to the block
    other, cand, y, valid = clustered_inputs(E=10, C=5, n=4, K_own=3, K_other=3, task=task)
    assert torch.allclose(candidate_losses(model, "item", other, cand, y, valid, task.loss_terms),
                          plain_losses(model, "item", other, cand, y, valid, task.loss_terms), rtol=1e-5, atol=1e-5)
