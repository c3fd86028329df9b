"""The public library surface (issue #15): ``from cel import CELEmbedding, CELLiteEmbedding,
ClusterSchedule``, keyword arguments with defaults, a user-loop schedule, documented names, and
packaging (core install without the workflow stack; exact pins only in constraints.txt)."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

import cel
from cel.errors import ConfigError

from shared_fixtures import one_thread  # noqa: F401 (autouse fixture)

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = ("snakemake", "mlflow", "optuna", "matplotlib")


# -- the import surface -----------------------------------------------------------------------------
def test_public_names_are_exported_and_documented():
    assert set(cel.__all__) == {"CELEmbedding", "CELLiteEmbedding", "ClusterSchedule", "__version__"}
    for name in ("CELEmbedding", "CELLiteEmbedding", "ClusterSchedule"):
        doc = getattr(cel, name).__doc__
        assert doc and re.search(r"Eq\. \d", doc + (sys.modules[getattr(cel, name).__module__].__doc__ or "")), name
    assert "(..., R)" in cel.CELEmbedding.__doc__ and "(M,)" in cel.CELEmbedding.__doc__
    assert "Eq. (7)" in cel.ClusterSchedule.__doc__ and "(B,)" in cel.ClusterSchedule.__doc__


def test_import_does_not_need_the_workflow_stack():
    code = ("import sys, cel; cel.CELEmbedding(10, 4)(__import__('torch').tensor([1])); "
            f"print([m for m in {WORKFLOW!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- constructors ---------------------------------------------------------------------------------------
def test_keyword_defaults_and_budget():
    e = cel.CELEmbedding(200)
    assert (e.num_embeddings, e.embedding_dim, e.max_clusters, e.n_clusters) == (200, 64, 10, 1)  # 5% default
    assert cel.CELEmbedding(1682, 32, compression=5).max_clusters == 84          # a percentage
    assert cel.CELEmbedding(1682, 32, num_clusters=84).max_clusters == 84
    assert cel.CELEmbedding(997, 8, num_clusters=13).max_clusters == 13
    assert cel.CELEmbedding(100, 8, t1=7, split_threshold=3).params.t1 == 7
    with pytest.raises(ValueError, match="not both"):
        cel.CELEmbedding(100, compression=5, num_clusters=5)
    with pytest.raises(ValueError, match="percentage"):
        cel.CELEmbedding(100, compression=500)
    with pytest.raises(ConfigError, match="bogus"):
        cel.CELEmbedding(100, bogus=1)
    with pytest.warns(UserWarning, match="percentage"):
        cel.CELEmbedding(1682, compression=0.05)                                  # 0.05% is one cluster
    lite = cel.CELLiteEmbedding(dim=8, num_clusters=6)
    assert lite.max_clusters == 6 and lite.num_embeddings == 0


def test_forward_is_a_drop_in_for_nn_embedding():
    e = cel.CELEmbedding(50, 6, num_clusters=5)
    ids = torch.tensor([[0, 3], [49, 3]])
    out = e(ids)
    assert out.shape == nn.Embedding(50, 6)(ids).shape == (2, 2, 6)
    assert torch.equal(out[0, 1], out[1, 1])
    lite = cel.CELLiteEmbedding(dim=6)
    assert lite(torch.tensor([7, 2])).shape == (2, 6) and lite.num_embeddings == 8   # admitted on arrival


def test_substitution_is_scoped():
    e = cel.CELEmbedding(20, 4, num_clusters=4)
    before = e(torch.arange(20)).detach()
    v = torch.full((2, 4), 9.0)
    with e.substituted(torch.tensor([3, 5]), v):
        inside = e(torch.arange(20))
    assert torch.equal(inside[[3, 5]], v) and torch.equal(inside[[0, 1]], before[[0, 1]])
    assert torch.equal(e(torch.arange(20)), before)


# -- the user-loop schedule -------------------------------------------------------------------------------
class DotModel(nn.Module):
    """A user's model: not from cel.models."""

    def __init__(self, n_users, items):
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, 4), items

    def forward(self, u, i):
        return (self.user(u) * self.item(i)).sum(-1)


def planted(n_users=60, n_items=80, k=4, d=6000, seed=0):
    g = torch.Generator().manual_seed(seed)
    U, C = torch.randn(n_users, 4, generator=g), torch.randn(k, 4, generator=g)
    z = torch.randint(k, (n_items,), generator=g)
    u, i = torch.randint(n_users, (d,), generator=g), torch.randint(n_items, (d,), generator=g)
    return u, i, (U[u] * C[z[i]]).sum(1), z


def loss_fn(model, batch):
    return (model(batch["u"], batch["i"]) - batch["y"]) ** 2


def train(items, provider=False, steps_per_epoch=None, epochs=15, seed=0):
    torch.manual_seed(seed)
    u, i, y, z = planted()
    model = DotModel(60, items)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    by_item = {j: torch.nonzero(i == j).squeeze(1) for j in range(80)}
    interactions_of = (lambda j: {"u": u[by_item[j]], "i": i[by_item[j]], "y": y[by_item[j]]}) if provider else None
    sched = cel.ClusterSchedule(items, loss_fn, entities="i", optimizer=opt, interactions_of=interactions_of)
    first = None
    for _ in range(epochs):
        for idx in torch.randperm(len(u)).split(200):
            batch = {"u": u[idx], "i": i[idx], "y": y[idx]}
            loss = loss_fn(model, batch).mean()
            first = loss.item() if first is None else first
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step(model, batch)
    model.eval()
    with torch.no_grad():
        final = loss_fn(model, {"u": u, "i": i, "y": y}).mean().item()
    return sched, first, final, z


@pytest.mark.parametrize("provider", [False, True], ids=["buffers", "interactions_of"])
def test_schedule_learns_planted_clusters_in_a_user_loop(provider):
    items = cel.CELEmbedding(80, 4, num_clusters=8, t1=15, t2=2, split_threshold=5, init_centroids="mean")
    sched, first, final, z = train(items, provider)
    assert items.n_clusters >= 4 and sched.splits and sched.moves
    assert final < 0.25 * first, (first, final)
    # each learned cluster is (nearly) pure in the planted clusters
    a = items.assignments()
    purity = sum(int(torch.bincount(z[a == k]).max()) for k in torch.unique(a)) / len(z)
    assert purity > 0.9, purity


def test_gradient_averaging_divides_by_cluster_size():
    e = cel.CELEmbedding(10, 3, num_clusters=2, m0=2)
    sched = cel.ClusterSchedule(e, loss_fn, entities="i")
    e(torch.arange(10)).sum().backward()
    sizes = torch.bincount(e.assign, minlength=2).float()
    assert torch.allclose(e.centroids.grad[:2], torch.ones(2, 3))             # (sum over members) / members
    assert (sizes > 0).all()
    sched.close()
    e.centroids.grad = None
    e(torch.arange(10)).sum().backward()
    assert torch.allclose(e.centroids.grad[:2], sizes[:, None].expand(2, 3))


def test_schedule_runs_cel_lite_in_a_user_loop():
    items = cel.CELLiteEmbedding(dim=4, num_clusters=8, split_threshold=20, init_centroids="mean")
    sched, first, final, _ = train(items, epochs=8)
    assert items.n_clusters > 1 and sched.splits
    assert final < 0.5 * first, (first, final)


def test_schedule_rejects_other_embeddings():
    with pytest.raises(TypeError, match="CELEmbedding"):
        cel.ClusterSchedule(nn.Embedding(5, 2), loss_fn, entities=1)


# -- packaging ------------------------------------------------------------------------------------------------
def test_core_dependencies_are_ranges_and_workflow_is_an_extra():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = meta["dependencies"]
    assert not [d for d in core if "==" in d], core
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in core}
    assert "torch" in names and not names & set(WORKFLOW)
    extra = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in meta["optional-dependencies"]["workflow"]}
    assert set(WORKFLOW) <= extra
    assert any(d.startswith("pytest") for d in meta["optional-dependencies"]["test"])


def test_constraints_pin_the_workflow_environment_and_make_uses_them():
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"
    for name in (*WORKFLOW, "numpy", "pandas", "pytest"):
        assert name in pins, name
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()
    env = (REPO / "envs" / "cel.yaml").read_text()
    assert "torch==2.13.0" in env and "snakemake==" in env


def test_api_reference_builds_with_the_public_names(tmp_path):
    """`make docs`: pdoc renders the package; the public names and their paper references are in it."""
    import pdoc

    pdoc.render.configure(docformat="markdown")
    pdoc.pdoc("cel", output_directory=tmp_path)
    page = (tmp_path / "cel.html").read_text()
    for name in ("CELEmbedding", "CELLiteEmbedding", "ClusterSchedule"):
        assert name in page
    assert "Eq." in page
