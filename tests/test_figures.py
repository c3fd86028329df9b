"""Figures read run folders only; the plotted points are the run's logged cumulative scores."""
import pandas as pd
import pytest

from cel.figures import progressive_figure, progressive_points


def _run(tmp_path, name, values):
    d = tmp_path / name
    d.mkdir()
    rows = [{"step": s, "n": 100 * s, "batch_mse": 9.0, "progressive_mse": v if s % 10 == 0 or s == 25 else None}
            for s, v in zip(range(1, 26), values)]
    pd.DataFrame(rows).to_parquet(d / "curves.parquet")
    return d


def test_progressive_figure_plots_the_logged_cumulative_scores(tmp_path):
    lite = _run(tmp_path, "lite", [2.0 - 0.04 * s for s in range(1, 26)])
    full = _run(tmp_path, "full", [1.5] * 25)
    points = progressive_figure({"CEL-Lite": lite, "full": full}, tmp_path / "fig" / "progressive.png")
    assert (tmp_path / "fig" / "progressive.png").stat().st_size > 1000
    assert list(points["CEL-Lite"]["n"]) == [1000, 2000, 2500]
    assert list(points["CEL-Lite"]["value"]) == pytest.approx([1.6, 1.2, 1.0])


def test_a_run_without_a_stream_is_a_clear_error(tmp_path):
    d = tmp_path / "batch"
    d.mkdir()
    pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.9]}).to_parquet(d / "curves.parquet")
    with pytest.raises(ValueError, match="progressive_mse"):
        progressive_points(d)
    with pytest.raises(FileNotFoundError, match="curves.parquet"):
        progressive_points(tmp_path / "missing")


# ------------------------------------------------------------------ paper figures (cel.figs)
import json
import math

import numpy as np

from cel.figs.common import MissingRuns, fold_stats
from cel.figs.fig3 import fig3
from cel.figs.fig4 import fig4
from cel.figs.fig5 import entropy_table, fig5, genre_entropy, genre_matrix
from cel.figs.fig6 import CRITERIA, fig6
from cel.figs.fig7b import outside_c
from cel.figs.prop1 import prop1_config, prop1_experiment, prop1_plot, prop1_points


def _row(method, comp, fold, seed, value, variant="original", metric="test_mse", **params):
    return {"task": "regression", "dataset": "d", "variant": variant, "model": "nmf", "method": method,
            "compression": str(comp), "fold": fold, "seed": seed, "metric": metric, "value": value,
            **{f"param.{k}": v for k, v in params.items()}}


def _expected(values_by_fold):
    """seeds averaged in a fold, then mean and s.e. over folds"""
    per_fold = [np.mean(v) for v in values_by_fold]
    se = np.std(per_fold, ddof=1) / math.sqrt(len(per_fold)) if len(per_fold) > 1 else 0.0
    return np.mean(per_fold), se


def test_fold_stats_averages_seeds_within_a_fold_before_the_standard_error():
    df = pd.DataFrame({"g": "a", "fold": [0, 0, 1, 2], "seed": [0, 1, 0, 0], "value": [1.0, 3.0, 4.0, 6.0]})
    st = fold_stats(df, ["g"]).iloc[0]
    m, se = _expected([[1.0, 3.0], [4.0], [6.0]])
    assert (st["mean"], st["n"]) == (pytest.approx(m), 3) and st["se"] == pytest.approx(se)


def _fig3_summary():
    rows = []
    for v, off in (("dense", 0.0), ("original", 0.1), ("sparse", 0.2)):
        for c in ("5", "1"):
            for f in range(3):
                for s in range(2):
                    rows.append(_row("cel", c, f, s, 0.80 + off + 0.01 * f + 0.001 * s + (0.02 if c == "1" else 0),
                                     variant=v, personalize_at=0))
                    rows.append(_row("cel_personalized", c, f, s, 0.78 + off + 0.01 * f, variant=v, personalize_at=600))
        for f in range(3):
            rows.append(_row("full", "100", f, 0, 0.9 + off + 0.01 * f, variant=v))
            rows.append(_row("cel", "100", f, 0, 0.1, variant=v, personalize_at=600))    # personalised cell: off-curve
    rows.append(_row("cel", "5", 0, 0, 123.0, metric="val_mse", personalize_at=0))
    return pd.DataFrame(rows)


def test_fig3_plots_the_fold_means_and_standard_errors_of_the_summary(tmp_path):
    summary = _fig3_summary()
    summary.to_csv(tmp_path / "summary.csv", index=False)
    pts = fig3(tmp_path / "summary.csv", tmp_path / "fig" / "fig3.pdf", "d")
    for ext in (".pdf", ".png", ".csv"):
        assert (tmp_path / "fig" / f"fig3{ext}").stat().st_size > 500
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fig" / "fig3.csv", dtype={"compression": str}),
                                  pts.reset_index(drop=True), check_dtype=False)
    cel = pts[(pts["curve"] == "CEL") & (pts["variant"] == "original") & (pts["compression"] == "1")].iloc[0]
    m, se = _expected([[0.92 + 0.01 * f, 0.921 + 0.01 * f] for f in range(3)])
    assert cel["mean"] == pytest.approx(m) and cel["se"] == pytest.approx(se) and cel["n"] == 3
    assert set(pts["curve"]) == {"CEL", "CEL (personalised)", "full embedding"}
    assert set(pts[pts["curve"] == "CEL"]["compression"]) == {"5", "1"}         # the personalised 100% cell is off
    p = pts[(pts["curve"] == "CEL (personalised)") & (pts["variant"] == "sparse") & (pts["compression"] == "5")]
    assert p["mean"].iloc[0] == pytest.approx(0.99)


def test_fig3_names_the_missing_cells(tmp_path):
    summary = _fig3_summary()
    summary = summary[~((summary["variant"] == "sparse") & (summary["method"] == "cel_personalized"))]
    summary.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(MissingRuns, match="variant=sparse/method=cel_personalized/compression=5"):
        fig3(tmp_path / "s.csv", tmp_path / "f3", "d")
    pts = fig3(tmp_path / "s.csv", tmp_path / "f3", "d", personalized=None)
    assert "CEL (personalised)" not in set(pts["curve"])
    with pytest.raises(FileNotFoundError, match="summary.csv"):
        fig3(tmp_path / "nope" / "summary.csv", tmp_path / "f3", "d")


def _bucket_run(results, method, comp, fold, seed, buckets):
    d = results / "runs" / "regression" / "d" / "original" / "nmf" / method / f"cr{comp}" / f"f{fold}" / f"s{seed}"
    d.mkdir(parents=True)
    rec = {"run": {"task": "regression", "dataset": "d", "variant": "original", "model": "nmf", "method": method,
                   "compression": comp, "fold": fold, "seed": seed}, "metrics": {"test_mse": 1.0},
           "test_mse_by_item_interactions": buckets}
    (d / "metrics.json").write_text(json.dumps(rec))


def test_fig4_plots_each_bucket_mean_over_folds(tmp_path):
    res = tmp_path / "results"
    for f in range(2):
        for s in range(2):
            _bucket_run(res, "cel", "1", f, s, {"0-1": 1.5 + f + s, "10-20": 0.9, "1-5": 1.2})
        _bucket_run(res, "prehash_kmq", "1", f, 0, {"0-1": 2.0, "1-5": 1.4 + 0.1 * f, "10-20": 0.95})
        _bucket_run(res, "full", "100", f, 0, {"0-1": 2.5, "1-5": 1.6, "10-20": 0.85})
        _bucket_run(res, "cel", "100", f, 0, {"0-1": 2.2, "1-5": 1.5, "10-20": 0.8})
    pts = fig4(res, tmp_path / "fig4.pdf", "d", "1")
    assert (tmp_path / "fig4.png").exists() and (tmp_path / "fig4.csv").exists()
    cel = pts[pts["curve"] == "CEL"]
    assert list(cel["bucket"]) == ["0-1", "1-5", "10-20"]                    # ordered by the lower edge
    m, se = _expected([[1.5, 2.5], [2.5, 3.5]])
    assert cel["mean"].iloc[0] == pytest.approx(m) and cel["se"].iloc[0] == pytest.approx(se)
    ph = pts[(pts["curve"] == "PreHash (K=M_q)") & (pts["bucket"] == "1-5")].iloc[0]
    assert ph["mean"] == pytest.approx(1.45)
    assert set(pts["curve"]) == {"CEL", "PreHash (K=M_q)", "full embedding", "CEL (personalised)"}
    with pytest.raises(MissingRuns, match="prehash_kmq/cr5"):
        fig4(res, tmp_path / "x.pdf", "d", "5")


def test_genre_entropy_both_readings_by_hand():
    G, names = genre_matrix(pd.Series(["A", "A|B", "B", "C"]))
    assert names == ["A", "B", "C"]
    assign = np.array([0, 0, 1, 1])
    h = genre_entropy(assign, G)
    # per genre over clusters: A all in 0 (0), B half/half (log 2), C in 1 (0)
    assert h["per_genre"] == pytest.approx(math.log(2) / 3)
    # per cluster over genres: cluster 0 labels A,A,B -> (2/3, 1/3); cluster 1 labels B,C -> (1/2, 1/2)
    h0 = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert h["per_cluster"] == pytest.approx((h0 + math.log(2)) / 2)
    # a genre-pure clustering is far below random clusterings of the same sizes
    G2, _ = genre_matrix(pd.Series(["A"] * 20 + ["B"] * 20))
    t = entropy_table(np.repeat([0, 1], 20), G2, n_random=50, seed=0).set_index("reading")
    assert t.loc["per_genre", "cel"] == 0 and t.loc["per_cluster", "cel"] == 0
    assert t.loc["per_genre", "random_mean"] > 0.3 and t.loc["per_genre", "p_random_lower"] == 0


def test_fig5_orders_clusters_by_mean_training_rating_and_lists_the_most_rated(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    items = pd.DataFrame({"item": range(6), "title": [f"m{i}" for i in range(6)],
                          "genres": ["A", "A", "A|B", "B", "B", "C"]})
    items.to_parquet(data / "items.parquet")
    # item i rated (i+1) times with rating r_i in training; item 5 only in the test fold 0
    r = {0: 5.0, 1: 4.0, 2: 4.5, 3: 1.0, 4: 2.0, 5: 3.0}
    rows = [{"user": u, "item": i, "rating": r[i]} for i in range(5) for u in range(i + 1)]
    rows += [{"user": 0, "item": 5, "rating": 3.0}, {"user": 1, "item": 0, "rating": 1.0}]
    inter = pd.DataFrame(rows)
    inter.to_parquet(data / "interactions.parquet")
    folds = [1] * (len(inter) - 2) + [0, 0]                      # the last two rows are run fold 0's test rows
    pd.DataFrame({"fold": folds}).to_parquet(data / "folds.parquet")
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame({"side": ["user"] * 2 + ["item"] * 6, "entity": [0, 1] + list(range(6)),
                  "cluster": [0, 0, 1, 1, 1, 0, 0, 1]}).to_parquet(run / "assignments.parquet")
    (run / "metrics.json").write_text(json.dumps({"run": {"fold": 0}}))
    clusters, ent = fig5(run, data, tmp_path / "fig5.pdf", n_random=20)
    assert (tmp_path / "fig5.png").exists() and (tmp_path / "fig5_entropy.csv").exists()
    assert list(clusters["cluster"]) == [0, 1]                            # low mean rating first
    c0 = clusters.iloc[0]
    assert c0["mean_rating"] == pytest.approx((1.0 * 4 + 2.0 * 5) / 9) and c0["n_items"] == 2
    assert clusters.iloc[1]["top_titles"] == "m2 | m1 | m0"                # most-rated first; m5 has no training row
    assert ent.set_index("reading").loc["per_genre", "items"] == 5


def test_fig6_plots_the_five_criteria_and_ranks_them(tmp_path):
    rows = []
    for k, m in enumerate(CRITERIA):
        for c in ("1", "0.5"):
            for f in range(2):
                rows.append(_row(m, c, f, 0, 0.85 + 0.01 * k + (0.02 if c == "0.5" else 0) + 0.001 * f))
    rows.append(_row("cel", "100", 0, 0, 0.1, personalize_at=600))
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    pts, ranks = fig6(tmp_path / "s.csv", tmp_path / "fig6.pdf", "d")
    assert len(pts) == 10 and (tmp_path / "fig6.png").exists()
    assert pts[(pts["method"] == "cel_criterion_loss") & (pts["compression"] == "1")]["mean"].iloc[0] == \
        pytest.approx(0.8605)
    assert list(ranks.set_index("method").loc[list(CRITERIA), "mean_rank"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    pd.DataFrame([r for r in rows if r["method"] != "cel_criterion_grad_norm"]).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(MissingRuns, match="cel_criterion_grad_norm"):
        fig6(tmp_path / "t.csv", tmp_path / "x.pdf", "d")


def test_outside_c_is_the_cone_around_the_all_ones_direction():
    R = 4
    rows = np.array([np.ones(R), np.eye(R)[0], [1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.9], np.zeros(R)])
    # x in C iff sum(x) >= sqrt(R-1)*||x||: ones: 4 >= sqrt(3)*2; e1: 1 < sqrt(3); (1,1,1,0): 3 >= 3 (boundary, in)
    assert list(outside_c(rows)) == [False, True, False, False, False]


def test_prop1_caps_cel_at_exactly_k_clusters_and_finds_the_argmin(tmp_path):
    cfg = prop1_config(tmp_path, ks=(1, 2, 3, 5, 7))
    from cel.embeddings.cel import CELEmbedding  # noqa: F401  (the cap: round(c / 100 * M))
    m = cfg.dataset("planted")["items"]
    assert sorted({int(round(float(k.compression) / 100 * m)) for k in cfg.runs()}) == [1, 2, 3, 5, 7]
    runs = pd.DataFrame({"k": [2, 6, 12, 2, 6, 12], "planted": 6, "fold": [0, 0, 0, 1, 1, 1], "seed": 0,
                         "val_mse": [0.5, 0.1, 0.12, 0.6, 0.11, 0.13], "test_mse": [0.5, 0.1, 0.09, 0.6, 0.096, 0.1]})
    pts = prop1_points(runs)
    v = pts[pts["metric"] == "val_mse"]
    assert v["argmin"].iloc[0] == 6 and v[v["k"] == 6]["mean"].iloc[0] == pytest.approx(0.105)
    assert pts[pts["metric"] == "test_mse"]["argmin"].iloc[0] == 12
    assert pts[pts["metric"] == "test_mse"]["k_1se"].iloc[0] == 6          # 0.098 is within 0.095 + se 0.005
    prop1_plot(runs, tmp_path / "prop1.pdf")
    assert (tmp_path / "prop1.png").exists()


def test_prop1_experiment_runs_real_cel_runs_and_reuses_them(tmp_path):
    kw = dict(planted={"users": 60, "items": 20, "clusters": 2, "rank": 2, "density": 0.5}, ks=(1, 2), folds=(0,),
              train={"steps": 40, "eval_every": 20})
    runs = prop1_experiment(tmp_path, **kw)
    assert list(runs["k"]) == [1, 2] and list(runs["clusters"]) == [1, 2]
    metrics = sorted(tmp_path.glob("runs/**/metrics.json"))
    assert len(metrics) == 2
    stamp = [p.stat().st_mtime_ns for p in metrics]
    again = prop1_experiment(tmp_path, **kw)                      # finished runs are reused, not retrained
    assert [p.stat().st_mtime_ns for p in metrics] == stamp
    pd.testing.assert_frame_equal(runs, again)
    changed = prop1_experiment(tmp_path, **{**kw, "train": {"steps": 20, "eval_every": 20}})   # settings changed: retrained
    assert [p.stat().st_mtime_ns for p in metrics] != stamp and not changed.equals(runs)


def test_fig7b_probe_follows_a_real_cel_training(tmp_path):
    from cel.figs.fig7b import fig7b_plot, outside_c_trajectory

    cfg = prop1_config(tmp_path, planted={"users": 80, "items": 40, "clusters": 4, "rank": 4, "density": 0.5},
                       ks=(4,), folds=(0,), train={"steps": 60, "eval_every": 20})
    key = cfg.runs()[0]
    t = outside_c_trajectory(cfg, key, steps=60, every=10)
    assert list(t["step"]) == [0, 10, 20, 30, 40, 50, 60]
    # M_0 = 1 cluster initialised at the mean of random nonnegative rows: parallel to 1, inside C
    assert (t["clusters"].iloc[0], t["share_outside"].iloc[0]) == (1, 0.0)
    assert t["clusters"].is_monotonic_increasing and t["clusters"].iloc[-1] <= 4
    assert ((t["outside"] / t["clusters"]) == t["share_outside"]).all()
    assert not list(tmp_path.glob("runs/**/metrics.json"))           # a probe run leaves no run folder behind
    fig7b_plot(t, tmp_path / "fig7b.pdf")
    assert pd.read_csv(tmp_path / "fig7b.csv")["share_outside"].tolist() == pytest.approx(t["share_outside"].tolist())


def test_cel_plot_cli_builds_a_figure_from_the_summary_and_names_missing_runs(tmp_path, capsys):
    from cel.cli import main

    rows = [{**_row(m, c, f, 0, 0.9 + 0.01 * k), "dataset": "synth"}
            for k, m in enumerate(CRITERIA) for c in ("1", "0.5") for f in range(2)]
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "figs" / "fig6_synth.pdf"
    assert main(["plot", "config/smoke.yaml", "--name", "fig6", "--summary", str(tmp_path / "s.csv"),
                 "--out", str(out)]) == 0
    assert out.exists() and out.with_suffix(".png").exists()
    assert pd.read_csv(out.with_suffix(".csv"))["mean"].tolist()[:2] == pytest.approx([0.9, 0.9])
    assert main(["plot", "config/smoke.yaml", "--name", "fig3", "--summary", str(tmp_path / "s.csv"),
                 "--out", str(tmp_path / "f3.pdf")]) == 2                      # ConfigError: exit 2, message
    assert "fig3: no runs for" in capsys.readouterr().err


def test_fig3_plots_the_compressions_every_variant_has(tmp_path):
    """Other tables add CEL runs on the original variant only (Table 5's 1.07%): Figure 3 plots the
    compressions all three variants have, instead of failing on the others."""
    summary = pd.concat([_fig3_summary(), pd.DataFrame([_row("cel", "1.07", 0, 0, 0.85, variant="original",
                                                             personalize_at=0)])])
    summary.to_csv(tmp_path / "summary.csv", index=False)
    pts = fig3(tmp_path / "summary.csv", tmp_path / "fig" / "fig3.pdf", "d")
    assert set(pts[pts["curve"] == "CEL"]["compression"]) == {"5", "1"}
