"""CEL-Lite's candidate scoring inside the business models (SAML, DUPN; issue #16): their
``candidate_scores`` (the per-side parts once, only the candidate-dependent part per (entity,
candidate, buffered interaction)) equals the model's own forward on the expanded pairs, on both
sides, and the losses of :func:`cel.cluster.lite_scoring.candidate_losses` (deduplicated grid and
direct block) equal the plain forward's. Speed: benchmarks/bench_deep_reassign.py --models saml,dupn.
"""
from __future__ import annotations

import pytest
import torch

from cel.cluster.lite_scoring import _grid_losses, candidate_losses
from cel.models import MODELS
from cel.train.tasks import Conversion, Regression

from shared_fixtures import one_thread  # noqa: F401 (autouse fixture)
from test_candidate_scoring_speed import R, clustered_inputs, plain_losses

NAMES = ["saml", "dupn"]


def make_model(name: str, **kw):
    """A materialised model with every parameter moved off its initial value (zero biases, the
    mutual unit's gates ...), so that each term of the forward pass counts."""
    torch.manual_seed(0)
    model = MODELS[name](nonneg="none", **kw)
    model(torch.randn(3, R), torch.randn(3, R))                         # materialise the lazy layers
    with torch.no_grad():
        for p in model.parameters():
            if not isinstance(p, torch.nn.parameter.UninitializedParameter):   # DUPN's attention: history only
                p.add_(0.3 * torch.randn_like(p))
    return model


def expanded_forward(model, side, others, cand):
    """(E, C, n) the model's forward on every (entity, candidate, interaction) row."""
    E, C, _ = cand.shape
    n = others.shape[1]
    o = others[:, None].expand(E, C, n, R).reshape(-1, R)
    c = cand[:, :, None].expand(E, C, n, R).reshape(-1, R)
    with torch.no_grad():
        return (model(o, c) if side == "item" else model(c, o)).reshape(E, C, n)


@pytest.mark.parametrize("side", ["item", "user"])
@pytest.mark.parametrize("name,kw", [("saml", {}), ("saml", {"mutual": False}), ("dupn", {})],
                         ids=["saml", "saml-no-mutual", "dupn"])
def test_candidate_scores_equal_the_forward_on_every_pair(name, kw, side):
    torch.manual_seed(1)
    lazy = MODELS[name](nonneg="none", **kw)
    assert lazy.candidate_scores(side, torch.randn(2, 3, R), torch.randn(2, 4, R)) is None     # still lazy
    model = make_model(name, **kw)
    g = torch.Generator().manual_seed(2)
    others, cand = torch.randn(5, 7, R, generator=g), torch.randn(5, 6, R, generator=g)
    with torch.no_grad():
        fast = model.candidate_scores(side, others, cand)
    ref = expanded_forward(model, side, others, cand)
    assert fast.shape == (5, 6, 7)
    assert ref.std() > 0.1                                              # the outputs vary over the pairs
    assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("task", [Conversion(), Regression()], ids=["conversion", "regression"])
@pytest.mark.parametrize("side", ["item", "user"])
@pytest.mark.parametrize("name", NAMES)
def test_candidate_losses_equal_the_plain_forward(name, side, task):
    model = make_model(name)
    other, cand, y, valid = clustered_inputs(E=40, C=11, n=7, K_own=9, K_other=6, task=task)
    ref = plain_losses(model, side, other, cand, y, valid, task.loss_terms)
    grid = _grid_losses(model, side, other, cand, y, valid, task.loss_terms, 1 << 22)
    assert grid is not None                                             # 9 x 6 pairs < 40 x 11 x 7 triples
    block = candidate_losses(model, side, other, cand, y, valid, task.loss_terms, dedup=False)
    small = candidate_losses(model, side, other, cand, y, valid, task.loss_terms, chunk_elems=1)
    for out in (grid, block, small):
        assert out.shape == (40, 11)
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5)
