"""Exact cluster reassignment (Eq. 4): every path of ``cluster_losses`` against a brute-force
double loop over (entity, candidate), and the tie / no-interaction rules of ``reassign``."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cel.cluster.interactions import EntityInteractions
from cel.cluster.reassign import MAX_TARGET_GROUPS, cluster_losses, reassign
from cel.models.base import InteractionModel, PairScorer
from cel.models.nmf import NMF
from cel.train.tasks import Conversion

M, N, K, R = 11, 7, 5, 4
EMPTY = (0, 5, 10)                          # entities without interactions


class Dot(InteractionModel):
    """A dot product without ``score_pairs``: takes the generic path."""

    def forward(self, u, i):
        return (u * i).sum(-1)


class Asym(InteractionModel):
    """Not symmetric in (user, item): catches a swapped argument order."""

    def forward(self, u, i):
        return (u * i).sum(-1) + 0.5 * u.sum(-1) - 0.25 * i[..., 0]


class NoForward(NMF):
    """A PairScorer whose forward must not be called: the fast path works from the table only."""

    def forward(self, u, i):
        raise AssertionError("the dot-product fast path evaluated the model on gathered rows")


class Recorder(InteractionModel):
    """Dot product that records the largest batch it was asked to evaluate."""

    def __init__(self):
        super().__init__()
        self.max_elems = 0

    def forward(self, u, i):
        self.max_elems = max(self.max_elems, u.numel(), i.numel())
        return (u * i).sum(-1)


def bce(pred, y):
    return F.binary_cross_entropy_with_logits(pred, y, reduction="none")


def make_data(targets: str = "ratings", dtype=torch.float32, seed: int = 0, k: int = K):
    g = torch.Generator().manual_seed(seed)
    ent = torch.tensor([j for j in range(M) if j not in EMPTY])
    cells = torch.randperm(len(ent) * N, generator=g)[:40]
    entity, other = ent[cells // N], cells % N
    if targets == "ratings":
        x = torch.randint(1, 6, (len(cells),), generator=g).float()
    elif targets == "binary":
        x = torch.randint(0, 2, (len(cells),), generator=g).float()
    elif targets == "gaps":                 # integers with unused values in between: 1 and 4
        x = 1.0 + 3.0 * torch.randint(0, 2, (len(cells),), generator=g).float()
    elif targets == "halves":               # few distinct non-integers (half stars)
        x = 0.5 * torch.randint(1, 11, (len(cells),), generator=g).float()
    else:                                   # continuous, more distinct values than the grouping takes
        x = torch.rand(len(cells), generator=g)
    inter = EntityInteractions.from_arrays(entity.numpy(), other.numpy(), x.numpy(), M, N)
    A = torch.rand(N, R, generator=g, dtype=torch.float64).to(dtype)
    C = torch.randn(k, R, generator=g, dtype=torch.float64).to(dtype)
    return inter, A, C


def brute(model, inter: EntityInteractions, A, C, side="item", loss=None) -> torch.Tensor:
    """L[j, k] = Σ_{d ∈ D_j} ℓ(model(other_d, c_k), x_d), one interaction at a time, float64."""
    loss = loss or (lambda p, y: (p - y) ** 2)
    A, C, x = A.double(), C.double(), inter.targets.double()
    out = torch.zeros(inter.num_entities, len(C), dtype=torch.float64)
    for j in range(inter.num_entities):
        for k in range(len(C)):
            for d in range(int(inter.crow[j]), int(inter.crow[j + 1])):
                o, c = A[inter.other[d]][None], C[k][None]
                p = model(o, c) if side == "item" else model(c, o)
                out[j, k] += loss(p, x[d : d + 1])[0]
    return out


def close(L: torch.Tensor, ref: torch.Tensor, dtype=torch.float32) -> bool:
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    return torch.allclose(L.double(), ref, rtol=tol, atol=tol * (1 + ref.abs().max().item()))


def test_nmf_takes_the_fast_path():
    assert isinstance(NMF(), PairScorer) and not isinstance(Dot(), PairScorer)
    inter, A, C = make_data()
    for loss in (None, bce):
        cluster_losses(NoForward(), A, inter, C, loss_terms=loss)    # raises if forward is called


@pytest.mark.parametrize("k", [R - 1, R + 1])     # X P directly (K <= R) or as (X A) Cᵀ (K > R)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("side", ["item", "user"])
def test_squared_error_fast_equals_generic_equals_brute_force(side, dtype, k):
    inter, A, C = make_data(dtype=dtype, k=k)
    ref = brute(NMF(), inter, A, C, side)
    fast = cluster_losses(NMF(), A, inter, C, side)
    generic = cluster_losses(Dot(), A, inter, C, side)
    assert fast.shape == generic.shape == (M, k) and fast.dtype == generic.dtype == dtype
    assert close(fast, ref, dtype) and close(generic, ref, dtype)
    assert torch.all(fast[list(EMPTY)] == 0) and torch.all(generic[list(EMPTY)] == 0)


@pytest.mark.parametrize("side", ["item", "user"])
def test_generic_path_respects_the_argument_order(side):
    inter, A, C = make_data()
    L = cluster_losses(Asym(), A, inter, C, side)
    assert close(L, brute(Asym(), inter, A, C, side))
    assert not close(L, brute(Asym(), inter, A, C, "user" if side == "item" else "item"))


@pytest.mark.parametrize("targets", ["binary", "ratings", "gaps", "halves", "continuous"])
@pytest.mark.parametrize("side", ["item", "user"])
def test_bce_loss_terms_against_brute_force(targets, side):
    inter, A, C = make_data(targets)
    if targets == "continuous":               # the gathered-rows fallback of the fast path
        assert len(torch.unique(inter.targets)) > MAX_TARGET_GROUPS
    ref = brute(NMF(), inter, A, C, side, bce)
    assert close(cluster_losses(NMF(), A, inter, C, side, loss_terms=bce), ref)
    assert close(cluster_losses(Dot(), A, inter, C, side, loss_terms=bce), ref)
    assert close(cluster_losses(Asym(), A, inter, C, side, loss_terms=bce), brute(Asym(), inter, A, C, side, bce))


def test_task_loss_terms_match_the_default_squared_error():
    inter, A, C = make_data()
    task = Conversion()
    y = task.labels(inter.targets)
    binary = EntityInteractions(inter.crow, inter.other, y, N)
    assert close(cluster_losses(NMF(), A, binary, C, loss_terms=task.loss_terms), brute(NMF(), binary, A, C, loss=bce))
    sq = lambda p, t: (p - t) ** 2                                          # noqa: E731
    assert close(cluster_losses(NMF(), A, inter, C, loss_terms=sq), cluster_losses(NMF(), A, inter, C).double())


@pytest.mark.parametrize("model", [NMF(), Dot()])
@pytest.mark.parametrize("loss", [None, bce])
@pytest.mark.parametrize("targets", ["ratings", "halves", "continuous"])
@pytest.mark.parametrize("chunk", [1, 3, 17, 50])
@pytest.mark.parametrize("k", [2, 9])
def test_tiny_chunks_equal_the_unchunked_result(model, loss, targets, chunk, k):
    inter, A, C = make_data(targets, k=k)
    full = cluster_losses(model, A, inter, C, loss_terms=loss, chunk_elems=1 << 30)
    assert torch.allclose(cluster_losses(model, A, inter, C, loss_terms=loss, chunk_elems=chunk), full,
                          rtol=1e-5, atol=1e-5)


def test_generic_path_evaluates_at_most_chunk_elems_at_once():
    inter, A, C = make_data()
    full = cluster_losses(Dot(), A, inter, C)
    for chunk in (R, 3 * R, 40 * R, 1 << 30):
        rec = Recorder()
        assert torch.allclose(cluster_losses(rec, A, inter, C, chunk_elems=chunk), full, rtol=1e-5, atol=1e-5)
        assert rec.max_elems <= max(chunk, R)
    assert rec.max_elems == len(inter) * K * R                  # unchunked: one evaluation


@pytest.mark.parametrize("model", [NMF(), Dot()])
@pytest.mark.parametrize("loss", [None, bce])
def test_no_interactions_at_all(model, loss):
    _, A, C = make_data()
    empty = EntityInteractions.from_arrays([], [], [], M, N)
    assert torch.equal(cluster_losses(model, A, empty, C, loss_terms=loss), torch.zeros(M, K))


def test_gradients_are_not_tracked():
    inter, A, C = make_data()
    L = cluster_losses(NMF(), A.requires_grad_(), inter, C.requires_grad_())
    assert not L.requires_grad


def test_argmin_of_the_losses_is_the_brute_force_reassignment():
    inter, A, C = make_data(seed=3)
    current = torch.arange(M) % K
    new = reassign(cluster_losses(NMF(), A, inter, C), current, inter.counts())
    has = inter.counts() > 0
    assert torch.equal(new[has], brute(NMF(), inter, A, C).argmin(1)[has])
    assert torch.equal(new[~has], current[~has])


def test_reassign_keeps_the_current_cluster_on_ties_and_without_interactions():
    losses = torch.tensor([[1.0, 1.0, 2.0],      # tie between current (1) and 0: stay
                           [3.0, 1.0, 1.0],      # tie between 1 and current (2): stay
                           [0.0, 0.0, 0.0],      # no interactions: stay
                           [5.0, 0.5, 4.0],      # no interactions, lower loss elsewhere: stay
                           [2.0, 1.0, 0.5]])     # strictly better elsewhere: move to 2
    current = torch.tensor([1, 2, 1, 0, 0])
    counts = torch.tensor([3, 2, 0, 0, 1])
    assert reassign(losses, current, counts).tolist() == [1, 2, 1, 0, 2]


def test_rejects_an_unknown_side_and_a_wrong_table():
    inter, A, C = make_data()
    with pytest.raises(ValueError, match="side"):
        cluster_losses(NMF(), A, inter, C, side="items")
    with pytest.raises(ValueError, match="rows"):
        cluster_losses(NMF(), A[:-1], inter, C)
