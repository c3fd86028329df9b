"""Every ablation switch of the paper profile runs end to end on the smoke data, and changes what
CEL does in the way it names, measured against base CEL on the same data and seed.

A run is watched through the schedule's two decisions (which cluster to split: ``choose_cluster``;
how to split it: ``split_mask``), the gradient averaging step (Eq. 7) and the trainer at the start
and the end of ``fit``. The runs are made once per module and shared by its tests.
"""
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import cel.train.grad_avg as grad_avg_mod
import cel.train.run as run_mod
from cel.train.gd import GD
import cel.train.schedule as schedule_mod
from cel.cluster.criteria import ClusterStats, choose_cluster
from cel.cluster.split import SplitContext, split_gpca, split_mask
from cel.config import load_config
from cel.metrics import adjusted_rand_index
from cel.train.run import execute_run
from conftest import REPO

PAPER = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# cel_retrain (frozen_from) needs base CEL's run first: test_retrain_with_frozen_clustering covers it
ABLATIONS = sorted(n for n, m in PAPER["methods"].items() if m.get("base") == "cel" and not m.get("frozen_from"))
N_USERS, N_ITEMS = 300, 200                    # config/smoke.yaml
BUDGET = 20                                    # 10 % of the 200 smoke items
STEPS, T2 = 80, 10                             # base CEL (t2 = 10) splits at steps 10, 20, ..., 80
AVERAGE = grad_avg_mod.average_shared_gradients


def _smoke_profile(tmp_path, methods, compression=10, steps=STEPS, extra=None, results=None):
    prof = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    prof["results_dir"] = str(results or tmp_path / "r")
    prof["methods"] = {m: PAPER["methods"][m] for m in methods} | (extra or {})
    prof["grid"] = [{"datasets": ["synth"], "methods": list(prof["methods"]), "compressions": [compression],
                     "folds": [0]}]
    prof["train"]["steps"] = steps
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(prof))
    return load_config(path)


# -- one watched run --------------------------------------------------------------------------------
@dataclass
class Watch:
    rec: dict = field(default_factory=dict)
    out: Path | None = None
    choices: list = field(default_factory=list)   # (step, criterion, stats copy, threshold, chosen cluster)
    splits: list = field(default_factory=list)    # (step, splitter, context copy, mask)
    grads: list = field(default_factory=list)     # item centroids: (grad before, after, reg, sizes, centroids)
    start_assign: torch.Tensor | None = None      # item clustering when training starts (after init)
    start_clusters: int = 0
    trainer: object = None                        # after fit: the selected model restored

    @property
    def split_steps(self):
        return [s for s, *_ in self.splits]


def watched_run(tmp: Path, name: str, params: dict, compression=10, steps=STEPS, lr_scale=1.0,
                results: Path | None = None, train: dict | None = None) -> Watch:
    w, now = Watch(), {"step": 0}

    def choose(criterion, stats, threshold=0):
        k = choose_cluster(criterion, stats, threshold)
        copy = ClusterStats(stats.assign.clone(), stats.n_clusters, stats.counts.clone(),
                            None if stats.grads is None else stats.grads.clone(),
                            None if stats.losses is None else stats.losses.clone())
        w.choices.append((now["step"], criterion, copy, threshold, k))
        return k

    def split(method, ctx):
        reps = ctx.reps() if ctx.reps is not None and method == "bisect_user" else None
        mask = split_mask(method, ctx)
        copy = SplitContext(ctx.grads.clone(), ctx.counts.clone(), torch.Generator(), ctx.delta, ctx.normalize,
                            None if reps is None else (lambda r=reps: r))
        w.splits.append((now["step"], method, copy, mask.clone()))
        return mask

    def average(emb, reg=0.0):
        watched = hasattr(emb, "centroids") and emb.centroids.grad is not None
        before = emb.centroids.grad.clone() if watched else None
        AVERAGE(emb, reg)
        if watched:
            w.grads.append((before, emb.centroids.grad.clone(), reg, emb.cluster_sizes().clone(),
                            emb.centroids.detach().clone()))

    fit, step_end = run_mod.Trainer.fit, schedule_mod.ClusterSchedule.on_step_end

    def watched_fit(self):
        w.start_assign = self.item_emb.assignments() if hasattr(self.item_emb, "assign") else None
        w.start_clusters = getattr(self.item_emb, "n_clusters", 0)
        result = fit(self)
        w.trainer = self
        return result

    def watched_step_end(self, t):
        now["step"] = t.step
        return step_end(self, t)

    cfg = _smoke_profile(tmp, [], compression=compression, steps=steps, extra={name: params}, results=results)
    # one training phase per run: the watch records one fit (the smoke profile refits by default)
    cfg.train = replace(cfg.train, lr=cfg.train.lr * lr_scale, **{"refit": False, **(train or {})})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(schedule_mod, "choose_cluster", choose)
        mp.setattr(schedule_mod, "split_mask", split)
        mp.setattr(schedule_mod.ClusterSchedule, "on_step_end", watched_step_end)
        mp.setattr(grad_avg_mod, "average_shared_gradients", average)
        mp.setattr(run_mod.Trainer, "fit", watched_fit)
        w.rec = execute_run(cfg, cfg.runs()[0], tmp / "run", log=lambda m: None)
    w.out = tmp / "run"
    return w


#: per ablation: run settings other than the paper's (the smoke run is 80 steps)
SETTINGS = {
    # without Eq. (7) the gradient of a cluster is |cluster| times larger: the smoke lr diverges
    # (which is the point of averaging), so this variant gets a smaller one
    "cel_no_grad_avg": {"lr_scale": 1 / 50},
    # the paper unties at step 800 of 5000; here at step 40 of 80
    "cel_personalize_warm": {"params": {"personalize_at": 40}},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> Watch, run on first use; all runs share one prepared smoke data set."""
    root = tmp_path_factory.mktemp("ablations")
    cache: dict[str, Watch] = {}

    def get(name: str) -> Watch:
        if name not in cache:
            s = SETTINGS.get(name, {})
            params = {**PAPER["methods"][name], **s.get("params", {})}
            d = root / name
            d.mkdir()
            cache[name] = watched_run(d, name, params, lr_scale=s.get("lr_scale", 1.0), results=root / "results")
        return cache[name]

    return get


def _train_frame(w: Watch) -> pd.DataFrame:
    d = w.trainer.feed.train
    return pd.DataFrame({"item": d.items.numpy(), "rating": d.labels.numpy()})


# -- what each switch must change ------------------------------------------------------------------
def check_base(w: Watch, base: Watch):
    """Base CEL: M_0 = 1, one split every t2 steps up to the budget, GPCA with δ = 0, the
    interactions criterion, Eq. (7) averaging."""
    assert w.start_clusters == 1
    assert w.split_steps == list(range(T2, STEPS + 1, T2))
    assert all(m == "gpca" and ctx.delta == "zero" for _, m, ctx, _ in w.splits)
    assert all(torch.equal(mask, split_gpca(ctx)) for _, _, ctx, mask in w.splits)
    assert all(c == "interactions" for _, c, *_ in w.choices)


def check_no_split(w: Watch, base: Watch):
    """Table 8: M_0 = M_q (every cluster from the start) and no split ever."""
    assert w.start_clusters == BUDGET and int(torch.unique(w.start_assign).numel()) == BUDGET
    assert base.start_clusters == 1
    assert w.splits == [] and w.rec["clusters"]["item"]["splits"] == 0
    assert base.rec["clusters"]["item"]["splits"] == len(base.splits) > 0


def _splitter(name):
    def check(w: Watch, base: Watch):
        """Table 6: the named splitter makes every split, and its masks are not GPCA's."""
        assert w.split_steps == base.split_steps
        assert all(m == name for _, m, _, _ in w.splits)
        assert any(not torch.equal(mask, split_gpca(ctx)) for _, _, ctx, mask in w.splits)
        if name == "random":                     # random halves
            assert all(int(mask.sum()) == len(mask) // 2 for *_, mask in w.splits)
    return check


def check_delta_median(w: Watch, base: Watch):
    """Table 9: δ = median of the scores halves every cluster by members (δ = 0 does not)."""
    assert all(ctx.delta == "median" for _, _, ctx, _ in w.splits) and w.splits
    assert all(abs(2 * int(m.sum()) - len(m)) <= 2 for *_, m in w.splits)
    assert any(abs(2 * int(m.sum()) - len(m)) > 2 for *_, m in base.splits)


def _interaction_imbalance(ctx, mask) -> float:
    """|moved - kept| interactions, in units of the largest member's interactions."""
    moved, total = float(ctx.counts[mask].sum()), float(ctx.counts.sum())
    return abs(2 * moved - total) / float(ctx.counts.max())


def check_delta_balanced(w: Watch, base: Watch):
    """Table 9: the weighted median balances the two sides' interactions (δ = 0 does not)."""
    assert all(ctx.delta == "balanced" for _, _, ctx, _ in w.splits) and w.splits
    assert all(_interaction_imbalance(ctx, m) <= 1 for _, _, ctx, m in w.splits)
    assert any(_interaction_imbalance(ctx, m) > 1 for _, _, ctx, m in base.splits)


def _criterion(name):
    def check(w: Watch, base: Watch):
        """Figure 6: every split takes the named criterion's cluster, at least once another
        cluster than the default (interactions) criterion would have taken."""
        assert len(w.choices) == len(base.choices) > 1
        assert all(c == name and k == choose_cluster(name, s, th) for _, c, s, th, k in w.choices)
        assert any(k != choose_cluster("interactions", s, th) for _, _, s, th, k in w.choices)
    return check


def _items(w: Watch) -> pd.DataFrame:
    return pd.read_parquet(w.out.parent.parent / "results" / "data" / "synth" / "original" / "items.parquet"
                           ).sort_values("item")


def _genre_buckets(w: Watch) -> np.ndarray:
    return _items(w)["genres"].str.split("|").str[0].to_numpy()


def _rating_buckets_ordered(w: Watch, assign: torch.Tensor) -> bool:
    """The clustering is the partition of the items into M_q equal runs by mean training rating."""
    frame = _train_frame(w)
    mean = frame.groupby("item")["rating"].mean().reindex(range(N_ITEMS)).fillna(frame["rating"].mean())
    by_cluster = pd.DataFrame({"c": assign.numpy(), "m": mean.to_numpy()}).groupby("c")["m"]
    sizes = by_cluster.size()
    lo, hi = by_cluster.min().to_numpy(), by_cluster.max().to_numpy()
    return len(sizes) == BUDGET and set(sizes) == {N_ITEMS // BUDGET} and bool((hi[:-1] <= lo[1:]).all())


def _rule(kind: str, then_cel: bool):
    def check(w: Watch, base: Watch):
        """Table 5: training starts from the rule-based clustering; '_only' keeps it (no split,
        no move), '_then_cel' goes on clustering from it."""
        if kind == "genre":
            assert adjusted_rand_index(w.start_assign, _genre_buckets(w)) == pytest.approx(1.0)
            assert w.start_clusters == 8                              # the 8 planted genres
        else:
            assert _rating_buckets_ordered(w, w.start_assign) and w.start_clusters == BUDGET
        final = torch.tensor(pd.read_parquet(w.out / "assignments.parquet").sort_values("entity")["cluster"].to_numpy())
        info = w.rec["clusters"]["item"]
        if then_cel:
            assert any(moved for _, moved in info["reassign_moves"]) or info["splits"] > 0
            assert adjusted_rand_index(final, w.start_assign) < 1.0
        else:
            assert info["splits"] == 0 and info["reassign_moves"] == [] and w.choices == []
            assert torch.equal(final, w.start_assign)
    return check


def check_no_grad_avg(w: Watch, base: Watch):
    """D.2: without averaging a shared row keeps its summed gradient; with it (base CEL) the data
    part is divided by the cluster's size (Eq. 7), the regulariser's part (λ·θ) kept whole."""
    before, after, *_ = w.grads[0]
    assert torch.equal(before, after)
    before, after, reg, sizes, theta = base.grads[0]
    k = len(sizes)
    expect = (before[:k] - reg * theta[:k]) / sizes[:, None].to(before.dtype) + reg * theta[:k]
    assert sizes.max() > 1 and torch.allclose(after[:k], expect, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(after[:k], before[:k])


def check_personalize_warm(w: Watch, base: Watch):
    """4.2.1: at ``personalize_at`` only the warm items (> warm_only interactions) get their own
    row; the cluster budget is the target compression (2 %), not the run's."""
    p = {**PAPER["methods"]["cel_personalize_warm"], **SETTINGS["cel_personalize_warm"]["params"]}
    counts = np.bincount(_train_frame(w)["item"], minlength=N_ITEMS)
    warm = counts > p["warm_only"]
    assert 0 < warm.sum() < N_ITEMS
    info, m = w.rec["clusters"]["item"], w.rec["metrics"]
    assert info["personalized_at"] == p["personalize_at"] and info["max_clusters"] == round(p["target_compression"] / 100 * N_ITEMS)
    assert torch.equal(w.trainer.item_emb.personal_mask, torch.tensor(warm))
    assert m["item_embedding_rows"] == info["final_clusters"] + int(warm.sum())
    assert base.rec["clusters"]["item"]["personalized_at"] == 0
    assert base.rec["metrics"]["item_embedding_rows"] == base.rec["clusters"]["item"]["final_clusters"]


def _reassign_every(t1: int):
    def check(w: Watch, base: Watch):
        """Table 10: reassignment runs every t1 steps (base CEL: 40), never in between."""
        steps = [s for s, _ in w.rec["clusters"]["item"]["reassign_moves"]]
        base_steps = [s for s, _ in base.rec["clusters"]["item"]["reassign_moves"]]
        assert all(s % t1 == 0 for s in steps) and all(s % 40 == 0 for s in base_steps)
        assert base_steps and steps != base_steps
        assert bool(steps) == (t1 <= w.rec["metrics"]["steps"])        # t1 = 100 > the 80 steps: none
    return check


EXPECT = {
    "cel_t1_20": _reassign_every(20),
    "cel_t1_100": _reassign_every(100),
    "cel_no_split": check_no_split,
    "random_split": _splitter("random"),
    "bisecting_2means_user": _splitter("bisect_user"),
    "bisecting_2means_gradient": _splitter("bisect_gradient"),
    "gradient_random_projection": _splitter("random_projection"),
    "delta_median": check_delta_median,
    "delta_balanced": check_delta_balanced,
    "genre_only": _rule("genre", then_cel=False),
    "genre_then_cel": _rule("genre", then_cel=True),
    "avg_rating_only": _rule("avg_rating", then_cel=False),
    "avg_rating_then_cel": _rule("avg_rating", then_cel=True),
    "cel_no_grad_avg": check_no_grad_avg,
    "cel_criterion_loss": _criterion("total_loss"),
    "cel_criterion_mean_loss": _criterion("mean_loss"),
    "cel_criterion_entities": _criterion("entities"),
    "cel_criterion_grad_norm": _criterion("grad_norm"),
    "cel_personalize_warm": check_personalize_warm,
}


def test_there_are_ablations():
    assert {"cel_no_split", "random_split", "genre_only", "delta_balanced", "cel_no_grad_avg"} <= set(ABLATIONS)
    assert set(EXPECT) == set(ABLATIONS)          # every switch has a check of what it changes


def test_base_cel_behaviour(runs):
    check_base(runs("cel"), runs("cel"))


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_changes_what_cel_does(runs, name):
    w = runs(name)
    assert w.rec["metrics"]["test_mse"] < 5.0
    assert w.rec["params"]["method"]["base"] == "cel"
    info = w.rec["clusters"]["item"]
    assert 1 <= info["final_clusters"] <= info["max_clusters"]
    EXPECT[name](w, runs("cel"))


def test_genre_only_keeps_rule_based_clustering(tmp_path):
    """Smoke items carry their planted cluster as genre: genre_only must keep exactly it."""
    cfg = _smoke_profile(tmp_path, ["genre_only"], compression=4)   # 8 planted clusters of 200 items
    rec = execute_run(cfg, cfg.runs()[0], tmp_path / "run", log=lambda m: None)
    learned = pd.read_parquet(tmp_path / "run" / "assignments.parquet").sort_values("entity")["cluster"]
    items = pd.read_parquet(tmp_path / "r" / "data" / "synth" / "original" / "items.parquet").sort_values("item")
    assert adjusted_rand_index(learned, items["cluster"]) == pytest.approx(1.0)
    assert rec["clusters"]["item"]["splits"] == 0 and rec["clusters"]["item"]["reassign_moves"] == []


def test_retrain_with_frozen_clustering(tmp_path, runs):
    """Table 11: retraining with the learned clustering fixed keeps exactly that clustering (no
    split, no move), where the same run without it clusters from scratch."""
    first = runs("cel")
    frozen = str(first.out / "assignments.parquet")
    a = pd.read_parquet(frozen)
    assert a["cluster"].nunique() > 1
    w = watched_run(tmp_path, "cel_retrain", {"base": "cel", "frozen_assignments": frozen})
    b = pd.read_parquet(w.out / "assignments.parquet")
    assert torch.equal(w.start_assign, torch.tensor(a.sort_values("entity")["cluster"].to_numpy()))
    assert a.sort_values("entity")["cluster"].tolist() == b.sort_values("entity")["cluster"].tolist()
    info = w.rec["clusters"]["item"]
    assert info["splits"] == 0 and info["reassign_moves"] == [] and w.choices == []
    assert first.start_clusters == 1 and first.rec["clusters"]["item"]["reassign_moves"]


def test_user_optimizer_and_lr_are_separate(tmp_path, runs):
    """Tables 13-14: the user side takes its own optimiser and learning rate, the items keep
    the run's (plain CEL has one SGD for both)."""
    w = watched_run(tmp_path, "cel", {}, train={"user_optimizer": "adam", "user_lr": 0.01})
    assert w.rec["params"]["train"]["user_optimizer"] == "adam"
    t = w.trainer
    by_param = {id(p): opt for opt in t.optimizer for g in opt.param_groups for p in g["params"]}
    user, item = by_param[id(t.user_emb.weight)], by_param[id(t.item_emb.centroids)]
    assert isinstance(user, torch.optim.Adam) and user.param_groups[0]["lr"] == 0.01
    assert isinstance(item, GD) and item.param_groups[0]["lr"] == w.trainer.cfg.lr != 0.01
    assert "exp_avg" in user.state[t.user_emb.weight]             # Adam really stepped the users
    base = runs("cel").trainer
    assert {type(o) for o in base.optimizer} == {GD}
    assert not torch.allclose(t.user_emb.weight, base.user_emb.weight)


def test_cluster_both_sides(tmp_path):
    """entities: both clusters the users too, to the same compression."""
    w = watched_run(tmp_path, "cel_both", {"base": "cel", "entities": "both"})
    rec = w.rec
    assert set(rec["clusters"]) == {"user", "item"}
    assign = pd.read_parquet(w.out / "assignments.parquet")
    k_user = assign[assign["side"] == "user"]["cluster"].nunique()
    assert rec["clusters"]["user"]["max_clusters"] == round(0.1 * N_USERS) and 1 < k_user <= 30
    assert rec["clusters"]["user"]["final_clusters"] == k_user
    assert rec["metrics"]["user_embedding_params"] == k_user * 8 + N_USERS    # K rows of R = 8 + M indices
