"""CEL-Lite's candidate scoring inside the business models (SAML, DUPN; issue #16): their
``candidate_scores`` (the per-side parts once, only the candidate-dependent part per (entity,
candidate, buffered interaction)) equals the model's own forward on the expanded pairs, on both
sides (their losses through :func:`cel.cluster.lite_scoring.candidate_losses` are checked with
every deep model's in tests/test_candidate_scoring_speed.py). Speed: benchmarks/bench_deep_reassign.py --models saml,dupn.
"""
from __future__ import annotations

import pytest
import torch

from cel.models import MODELS

from shared_fixtures import one_thread  # noqa: F401 (autouse fixture)
from test_candidate_scoring_speed import R, expanded_forward, make_model


@pytest.mark.parametrize("side", ["item", "user"])
@pytest.mark.parametrize("name,kw", [("saml", {}), ("saml", {"mutual": False}), ("dupn", {})],
                         ids=["saml", "saml-no-mutual", "dupn"])
def test_candidate_scores_equal_the_forward_on_every_pair(name, kw, side):
    torch.manual_seed(1)
    lazy = MODELS[name](nonneg="none", **kw)
    assert lazy.candidate_scores(side, torch.randn(2, 3, R), torch.randn(2, 4, R)) is None     # still lazy
    model = make_model(name, perturb=True, **kw)
    g = torch.Generator().manual_seed(2)
    others, cand = torch.randn(5, 7, R, generator=g), torch.randn(5, 6, R, generator=g)
    with torch.no_grad():
        fast = model.candidate_scores(side, others, cand)
    ref = expanded_forward(model, side, others, cand)
    assert fast.shape == (5, 6, 7)
    assert ref.std() > 0.1                                              # the outputs vary over the pairs
    assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-5)
