"""eTree and JNKM: full leaves regularised toward a learned clustering, shared at test time."""
import pytest
import torch

from cel.errors import ConfigError
from cel.embeddings import EMBEDDINGS, test_time
from cel.embeddings.etree import ETreeEmbedding
from cel.embeddings.jnkm import JNKMEmbedding

M, R = 60, 4


def _build(cls, compression, seed=0, **kw):
    return cls(M, R, compression, cls.Params(**kw), torch.Generator().manual_seed(seed))


def test_registered_and_sizes():
    assert EMBEDDINGS["etree"] is ETreeEmbedding and EMBEDDINGS["jnkm"] is JNKMEmbedding
    for cls in (ETreeEmbedding, JNKMEmbedding):
        shared = _build(cls, 10.0)                     # M_q = 6 parents
        assert shared.n_parents == 6 and shared.embedding_rows() == 6 and shared.index_entries() == M
        assert shared.num_parameters() == 6 * R + M    # the M_q parent rows and the M assignments
        with torch.no_grad(), test_time(shared):       # at test time the entities use only those rows
            assert torch.unique(shared.table(), dim=0).shape[0] <= shared.parents.shape[0] == 6
        assert shared.cluster_sizes().min() >= 1       # D.1 init: every parent has a member
        full = _build(cls, 100.0, full_clusters=5.0)   # the original: leaves kept, 3 parents regularise
        assert full.n_parents == 3 and full.embedding_rows() == M and full.index_entries() == 0
        assert full.num_parameters() == M * R          # the leaves only: the parents are not stored
        with torch.no_grad(), test_time(full):
            assert torch.equal(full.table(), full.weight)


def test_leaves_while_training_parents_at_test_time():
    emb = _build(JNKMEmbedding, 10.0)
    ids = torch.tensor([0, 7, 59])
    assert torch.equal(emb(ids), emb.weight[ids])
    with test_time(emb):
        assert torch.equal(emb(ids), emb.parents[emb.assign[ids]])
        assert torch.equal(emb.table(), emb.parents[emb.assign])
    orig = _build(JNKMEmbedding, 100.0)
    with test_time(orig):
        assert torch.equal(orig(ids), orig.weight[ids])   # 100%: no sharing


def test_penalty_by_hand():
    emb = _build(JNKMEmbedding, 10.0, lam=3.0)
    want = 0.5 * 3.0 * sum(((emb.weight[j] - emb.parents[emb.assign[j]]) ** 2).sum() for j in range(M))
    assert emb.penalty().item() == pytest.approx(want.item(), rel=1e-5)
    emb.penalty().backward()                           # the penalty pulls each leaf to its parent
    assert torch.allclose(emb.weight.grad, 3.0 * (emb.weight - emb.parents[emb.assign]).detach())
    assert _build(JNKMEmbedding, 10.0, lam=0.0).penalty() is None


def test_assignment_is_the_nearest_parent():
    emb = _build(JNKMEmbedding, 10.0)
    with torch.no_grad():
        emb.parents.copy_(torch.randn(6, R, generator=torch.Generator().manual_seed(5)))
    emb.update_assignment()
    brute = torch.stack([((emb.weight.detach() - emb.parents[k]) ** 2).sum(1) for k in range(6)], 1).argmin(1)
    assert torch.equal(emb.assign, brute)


def test_jnkm_parents_are_member_means_and_empty_keeps_its_row():
    emb = _build(JNKMEmbedding, 10.0)
    with torch.no_grad():
        emb.assign.copy_(torch.arange(M) % 5)           # parent 5 empty
        emb.parents[5] = 7.0
    emb.update_parents()
    for k in range(5):
        assert torch.allclose(emb.parents[k], emb.weight.detach()[emb.assign == k].mean(0), atol=1e-6)
    assert torch.equal(emb.parents[5], torch.full((R,), 7.0))


def test_etree_parents_solve_the_tree_objective():
    """Stationarity of λ/2 Σ||B_j - C_k||² + λ_root/2 Σ||C_k - c0||² in C with c0 = mean(C)."""
    lam, lam_root = 2.0, 5.0
    emb = _build(ETreeEmbedding, 10.0, lam=lam, lam_root=lam_root, root_iters=200)
    with torch.no_grad():
        emb.assign.copy_(torch.arange(M) % 5)           # parent 5 empty -> it becomes the root
    emb.update_parents()
    B, C, c0 = emb.weight.detach(), emb.parents, emb.root
    for k in range(6):
        members = B[emb.assign == k]
        grad = -lam * (members - C[k]).sum(0) + lam_root * (C[k] - c0)
        assert torch.allclose(grad, torch.zeros(R), atol=1e-4)
    assert torch.allclose(C[5], c0, atol=1e-5)
    # without the root term the parents are the member means (JNKM)
    flat = _build(ETreeEmbedding, 10.0, lam=lam, lam_root=0.0)
    with torch.no_grad():
        flat.assign.copy_(torch.arange(M) % 6)
    flat.update_parents()
    assert torch.allclose(flat.parents[2], flat.weight.detach()[flat.assign == 2].mean(0), atol=1e-6)


def test_etree_root_weight_defaults_to_lam():
    """lam_root unset = lam (the one knob the hand grid tunes); set, it changes the parents."""
    tied, same, other = (_build(ETreeEmbedding, 10.0, lam=3.0, **kw) for kw in ({}, {"lam_root": 3.0}, {"lam_root": 0.3}))
    for emb in (tied, same, other):
        with torch.no_grad():
            emb.assign.copy_(torch.arange(M) % 5)
        emb.update_parents()
    assert torch.equal(tied.parents, same.parents) and not torch.allclose(tied.parents, other.parents)


def test_etree_root_shrinks_small_clusters_more():
    emb = _build(ETreeEmbedding, 10.0, lam=1.0, lam_root=10.0, root_iters=50)
    with torch.no_grad():
        assign = torch.zeros(M, dtype=torch.long)
        assign[:2] = 1                                   # cluster 1: 2 members, cluster 0: 58
        assign[2:10] = torch.arange(2, 6).repeat(2)
        emb.assign.copy_(assign)
    emb.update_parents()
    B = emb.weight.detach()
    gap = [((emb.parents[k] - B[emb.assign == k].mean(0)).norm() / (emb.root - B[emb.assign == k].mean(0)).norm())
           for k in (0, 1)]
    assert gap[1] > gap[0]                               # the 2-member parent sits nearer the root


def test_step_hook_updates_on_schedule():
    emb = _build(JNKMEmbedding, 10.0, update_every=3)
    with torch.no_grad():
        emb.parents.zero_()
        emb.on_step(0)                                   # fit start: parents from the leaves only
    means = emb.parents.clone()
    assert means.abs().sum() > 0
    before = emb.assign.clone()
    with torch.no_grad():
        emb.weight.copy_(emb.weight.flip(0))
        emb.on_step(1)
        emb.on_step(2)
    assert torch.equal(emb.assign, before)              # not an update step
    with torch.no_grad():
        emb.on_step(3)
    d = torch.cdist(emb.weight.detach(), means)
    assert torch.equal(emb.assign, d.argmin(1))         # reassigned to the nearest of the old parents


def test_bad_params_name_the_key():
    with pytest.raises(ConfigError, match="lam"):
        ETreeEmbedding.Params(lam=-1.0)
    with pytest.raises(ConfigError, match="unknown key at 'methods.jnkm.lambda'"):
        JNKMEmbedding.Params.from_dict({"lambda": 1.0}, key="methods.jnkm")


@pytest.mark.parametrize("method", ["etree", "jnkm"])
@pytest.mark.parametrize("compression", ["100", "10"])
def test_end_to_end_run_uses_the_stored_model(profile_path, tmp_path, method, compression):
    """The run driver evaluates the test-time model: below 100% the reported test MSE is that of
    the parents, the stored size is M_q rows + M indices, and the planted clusters help."""
    from cel.config import load_config
    from cel.runkey import RunKey
    from cel.train.run import execute_run

    prof = profile_path(methods={method: {"lam": 5.0, "update_every": 5}},
                        grid=[{"datasets": ["synth"], "methods": [method], "compressions": [int(compression)],
                               "folds": [0]}],
                        train={"optimizer": "gd", "lr": 0.002, "steps": 150, "eval_every": 10,
                               "log_every": 1000, "val_fraction": 0.1})
    cfg = load_config(prof)
    rec = execute_run(cfg, RunKey("regression", "synth", "original", "nmf", method, compression, 0), tmp_path / "run",
                      log=lambda m: None)
    m = rec["metrics"]
    n_items = rec["tags"]["n_items"]
    if compression == "10":
        assert m["item_embedding_rows"] == 8 and m["item_embedding_params"] == 8 * 6 + n_items
    else:
        assert m["item_embedding_rows"] == n_items
    assert m["test_mse"] < 1.0                          # ratings ~3 ± 1: it learned the clusters
