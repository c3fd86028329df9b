"""Tables as declarations: summary.csv from metrics.json, cells (mean ± std over folds, seeds averaged
within a fold first), the paper's value and the delta, claims in the metric's direction.

Tables 2, 3, 5, 6, 8, 9, 10, 12, 13 and 14 are declared here, shaped like the paper's, over one
synthetic summary; each is checked against numbers worked out by hand.
"""
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from cel.paper import paper_value
from cel.report import COLUMNS, canon, summarize
from cel.tables import (TABLE7_METHODS, latex_escape, TABLES, Axis, Claim, PaperRef, TableSpec, cell_stats, check_claims,
                        fold_values, holm, render, write_table)

# ---------------------------------------------------------------------------------------------
# The synthetic grid. Every run below has folds 0-2 and seeds 0-1, value = base + 0.01 fold +
# 0.004 seed: seeds average to base + 0.01 fold + 0.002, folds to base + 0.012 with sample std 0.01.
FOLDS, SEEDS = (0, 1, 2), (0, 1)


def mean_of(base):
    return base + 0.012


STD, N = 0.01, "3\\times2"     # 3 folds x 2 seeds (averaged within each fold first)
TRAIN_GD = {"train.optimizer": "gd", "train.lr": "0.0001"}
CEL = {"param.base": "cel", "param.t1": "40", "param.split": "True", "param.split_method": "gpca",
       "param.delta": "zero", "param.init": "random", "param.cluster_after_init": "True",
       "param.grad_avg": "True", **TRAIN_GD}


def _add(rows, base, *, metric="test_mse", params=None, **coords):
    run = {"task": "regression", "dataset": "ml-1m", "variant": "original", "model": "nmf", "method": "cel",
           "compression": "5", **coords}
    for f in FOLDS:
        for s in SEEDS:
            rows.append({**run, "fold": f, "seed": s, "metric": metric, "value": base + 0.01 * f + 0.004 * s,
                         **(params or {})})


def _cel(rows, base, method="cel", **kw):
    params = {**CEL, **kw.pop("params", {})}
    _add(rows, base, method=method, params=params, **kw)


def grid() -> pd.DataFrame:
    r = []
    # Table 2 (ML-1m, NMF and DIN) -- also Table 6's GPCA row and Table 8's split row
    for model, shift in (("nmf", 0.0), ("din", -0.01)):
        _add(r, 0.84 + shift, model=model, method="full", compression="100", params=TRAIN_GD)
        for c, b in (("100", 0.75), ("5", 0.78), ("1", 0.79), ("0.5", 0.80)):
            _cel(r, b + shift, model=model, compression=c)
        for c, b in (("5", 0.80), ("1", 0.81), ("0.5", 0.815)):
            _add(r, b + shift, model=model, method="prehash_kmq", compression=c, params={"param.top_k": 0, **TRAIN_GD})
        _add(r, 1.02 + shift, model=model, method="modulo", compression="5", params=TRAIN_GD)
        # Table 8: no split
        for c, b in (("100", 0.76), ("1", 0.80), ("0.5", 0.805)):
            _cel(r, b + shift, method="cel_no_split", model=model, compression=c, params={"param.split": False})
    # Table 3: conversion, AUC in [0, 1] (the paper: %), users and items compressed
    for ds in ("video_games", "electronics"):
        for model in ("din", "deepfm"):
            _add(r, 0.68, task="conversion", dataset=ds, model=model, method="full", compression="100", metric="test_auc")
            _add(r, 0.55, task="conversion", dataset=ds, model=model, method="full", compression="100",
                 metric="test_logloss")
            for c in ("10", "5", "2"):
                _add(r, 0.60, task="conversion", dataset=ds, model=model, method="modulo", compression=c,
                     metric="test_auc")
                _add(r, 0.60, task="conversion", dataset=ds, model=model, method="modulo", compression=c,
                     metric="test_logloss")
            for c in ("100", "10", "5", "2"):
                _add(r, 0.70, task="conversion", dataset=ds, model=model, method="cel_lite", compression=c,
                     metric="test_auc")
                _add(r, 0.50, task="conversion", dataset=ds, model=model, method="cel_lite", compression=c,
                     metric="test_logloss")
    # Table 5: rule-based clusterings on ML-1m; M_q = 18, 40, 200 of 3706 items
    for method, init, cont, bases in (("genre_only", "genre", "False", {"0.486": 1.05}),
                                      ("avg_rating_only", "avg_rating", "False", {"0.486": 0.84, "1.08": 0.835,
                                                                                  "5.4": 0.83}),
                                      ("genre_then_cel", "genre", "True", {"0.486": 0.80, "1.08": 0.79, "5.4": 0.78}),
                                      ("avg_rating_then_cel", "avg_rating", "True", {"0.486": 0.795, "1.08": 0.79,
                                                                                     "5.4": 0.785}),
                                      ("cel", "random", "True", {"0.486": 0.798, "1.08": 0.786, "5.4": 0.777})):
        for c, b in bases.items():
            _cel(r, b, method=method, compression=c,
                 params={"param.init": init, "param.cluster_after_init": cont})
    # Table 6: split methods at 1% (GPCA on ML-1m is Table 2's CEL at 1%)
    _cel(r, 0.87, dataset="ml-100k", compression="1")
    for method, sm, b100k, b1m in (("random_split", "random", 0.94, 0.85),
                                   ("bisecting_2means_user", "bisect_user", 0.92, 0.835),
                                   ("bisecting_2means_gradient", "bisect_gradient", 0.885, 0.82),
                                   ("gradient_random_projection", "random_projection", 0.92, 0.827)):
        _cel(r, b100k, method=method, dataset="ml-100k", compression="1", params={"param.split_method": sm})
        _cel(r, b1m, method=method, dataset="ml-1m", compression="1", params={"param.split_method": sm})
    # Table 9 (2%): delta; CEL at 2% on the original data is also Table 12's "default" and Table 13's GD cell
    for method, delta, b100k, b1m in (("cel", "zero", 0.87, 0.78), ("delta_median", "median", 0.872, 0.781),
                                      ("delta_balanced", "balanced", 0.871, 0.7805)):
        _cel(r, b100k, method=method, dataset="ml-100k", compression="2", params={"param.delta": delta})
        _cel(r, b1m, method=method, dataset="ml-1m", compression="2", params={"param.delta": delta})
    # Table 10: t1 at 0.5% and 1% (t1 = 40 is Table 2's CEL), train and test MSE
    _cel(r, 0.72, compression="0.5", metric="train_mse")
    _cel(r, 0.70, compression="1", metric="train_mse")
    for t1, c, test, train in ((20, "0.5", 0.801, 0.715), (100, "0.5", 0.805, 0.725),
                               (20, "1", 0.795, 0.69), (100, "1", 0.788, 0.705)):
        _cel(r, test, method=f"cel_t1_{t1}", compression=c, params={"param.t1": t1})
        _cel(r, train, method=f"cel_t1_{t1}", compression=c, metric="train_mse", params={"param.t1": t1})
    # Table 12: density; JNKM at 100%, CEL at 2%
    for ds, jnkm, cel in (("ml-100k", (0.88, 0.94, 0.99), (None, 0.895, 0.94)),
                          ("ml-1m", (0.76, 0.815, 0.835), (None, 0.80, 0.825))):
        for variant, bj, bc in zip(("original", "density50", "density25"), jnkm, cel):
            _add(r, bj, dataset=ds, variant=variant, method="jnkm", compression="100", params={"param.lam": 50.0})
            if bc is not None:                      # the original is Table 9's CEL at 2%
                _cel(r, bc, dataset=ds, variant=variant, compression="2")
    # Table 13: optimizer x gradient averaging, ML-100k (GD + averaging is CEL above)
    for method, opt, avg, b1, b2 in (("cel_no_grad_avg", "gd", "False", 1.02, 1.01),
                                     ("cel_adam", "adam", "True", 0.91, 0.915),
                                     ("cel_adam_no_grad_avg", "adam", "False", 0.92, 0.93)):
        for c, b in (("1", b1), ("2", b2)):
            _cel(r, b, method=method, dataset="ml-100k", compression=c,
                 params={"param.grad_avg": avg, "train.optimizer": opt})
    # Table 14: user optimizer and learning rate at 2% (floats and strings, as a CSV would hold them)
    for method, uopt, ulr, b in (("cel_user_gd_1e-5", "gd", 1e-05, 0.90), ("cel_user_adam", "adam", "0.001", 0.87),
                                 ("cel_user_rmsprop", "rmsprop", 0.0001, 0.875)):
        _cel(r, b, method=method, dataset="ml-100k", compression="2",
             params={"train.user_optimizer": uopt, "train.user_lr": ulr})
    df = pd.DataFrame(r)
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]


@pytest.fixture(scope="module")
def summary():
    return grid()


def _hand_cells(summary, spec, stats):
    """Independent recomputation of every cell: seeds averaged within a fold, then folds."""
    keys = [a.name for a in spec.rows + spec.cols]
    fixed = {k: v for k, v in spec.filters.items() if "+" not in k and k != "metric"}
    for rec in stats.to_dict("records"):
        sel = summary
        for k, vals in fixed.items():
            sel = sel[sel[k].map(canon).isin(vals)]
        for k in keys:
            sel = sel[sel[k].map(canon) == rec[k]]
        if "metric" not in keys:
            sel = sel[sel["metric"] == spec.metric]
        for k, vals in spec.filters.items():
            if "+" in k:
                a, b = k.split("+")
                sel = sel[[f"{canon(x)}+{canon(y)}" in vals for x, y in zip(sel[a], sel[b])]]
        per_fold = {}
        for f, s, v in zip(sel["fold"], sel["seed"], sel["value"]):
            per_fold.setdefault(f, []).append(v * spec.scale.get(rec["metric"], 1.0))
        means = [sum(v) / len(v) for v in per_fold.values()]
        m = sum(means) / len(means)
        sd = math.sqrt(sum((x - m) ** 2 for x in means) / (len(means) - 1)) if len(means) > 1 else 0.0
        assert rec["n"] == len(means), rec
        assert rec["mean"] == pytest.approx(m, abs=1e-12), rec
        assert rec["std"] == pytest.approx(sd, abs=1e-12), rec


def _row(tex, start):
    return next(line for line in tex.splitlines() if line.startswith(start))


def _cell_text(mean, std, n, paper=None, digits=4):
    ours = f"{mean:.{digits}f} $\\pm$ {std:.{digits}f}$^{{n={n}}}$"
    if paper is None:
        return f"{ours} \\\\ \\scriptsize[--]"
    return f"{ours} \\\\ \\scriptsize[{paper:.{digits}f}; ${mean - paper:+.{digits}f}$]"


# ---------------------------------------------------------------------------------------------
# summarize: metrics.json -> long format
def _record(run, metrics, method=None, train=None, timing=None):
    return {"run": run, "metrics": metrics, "timing": timing or {}, "clusters": {}, "tags": {},
            "params": {"method": method or {}, "train": train or {}}}


def test_summarize_reports_the_hand_grids_choice(tmp_path):
    rec = _record({"task": "regression", "dataset": "ml-100k", "variant": "original", "model": "nmf",
                   "method": "etree", "compression": "5", "fold": 0, "seed": 0}, {"test_mse": 0.9},
                  method={"base": "etree", "lam": 1.0, "update_every": 10})
    rec["selection"] = {"params": {"lam": 10.0}, "candidates": []}
    (tmp_path / "metrics.json").write_text(json.dumps(rec))
    row = summarize([tmp_path / "metrics.json"]).iloc[0]
    assert (row["param.lam"], row["param.update_every"]) == ("10", "10")


def test_summarize_new_and_old_records(tmp_path):
    new = _record({"task": "regression", "dataset": "ml-100k", "variant": "original", "model": "nmf",
                   "method": "cel", "compression": "5", "fold": 1, "seed": 2},
                  {"test_mse": 0.87, "item_compression_real": 6.5, "note": "x", "flag": True},
                  method={"base": "cel", "t1": 40, "delta": "zero", "grad_avg": True, "lambda_p": 50.0,
                          "target_compression": 0.5},
                  train={"optimizer": "gd", "lr": 0.0001}, timing={"train_seconds": 3})
    old = {"run": {"dataset": "ml-100k", "variant": "original", "model": "nmf", "method": "full",
                   "compression": 100, "fold": 0},
           "metrics": {"test_mse": 0.93}, "timing": {}, "params": {"method": {"base": "full"}}}
    conv = _record({"task": "conversion", "dataset": "video_games", "variant": "original", "model": "din",
                    "method": "cel_lite", "compression": "10", "fold": 0, "seed": 1},
                   {"test_auc": 0.71, "test_logloss": 0.5})
    files = []
    for i, rec in enumerate((new, old, conv)):
        files.append(tmp_path / f"{i}" / "metrics.json")
        files[-1].parent.mkdir()
        files[-1].write_text(json.dumps(rec))
    s = summarize(files)
    assert list(s.columns[:len(COLUMNS)]) == COLUMNS
    params = list(s.columns[len(COLUMNS):])
    assert params == sorted(params, key=lambda c: (not c.startswith("param."), c))
    assert {"param.base", "param.delta", "param.grad_avg", "param.lambda_p", "param.t1", "param.target_compression",
            "train.lr", "train.optimizer"} <= set(params)
    # a parameter the record leaves unset reads as the method's default (Table 10's t1 = 40 row)
    assert set(s.loc[s["method"] == "cel", "param.t2"]) == {"10"}
    # non-numeric and boolean metrics are skipped; timing is kept
    assert sorted(s[s["method"] == "cel"]["metric"]) == ["item_compression_real", "test_mse", "train_seconds"]
    # sorted by task, dataset, ..., method, compression, fold, seed, metric
    assert list(s["method"]) == ["cel_lite", "cel_lite", "cel", "cel", "cel", "full"]
    full = s[s["method"] == "full"].iloc[0]
    assert (full["task"], full["seed"], full["compression"], full["param.base"]) == ("regression", 0, "100", "full")
    assert pd.isna(full["param.t1"]) and pd.isna(full["train.optimizer"])
    cel = s[(s["method"] == "cel") & (s["metric"] == "test_mse")].iloc[0]
    assert (cel["fold"], cel["seed"], cel["value"]) == (1, 2, 0.87)
    assert (cel["param.t1"], cel["param.grad_avg"], cel["param.lambda_p"], cel["param.target_compression"],
            cel["train.lr"]) == ("40", "True", "50", "0.5", "0.0001")
    assert set(s[s["task"] == "conversion"]["metric"]) == {"test_auc", "test_logloss"}


def test_summary_csv_round_trip_gives_the_same_cells(tmp_path, summary):
    path = tmp_path / "summary.csv"
    summary.to_csv(path, index=False)
    back = pd.read_csv(path, dtype={"compression": str})      # as the CLI reads it: t1 comes back as 40.0
    for spec in (TABLE10, TABLE14, TABLE5):
        a, b = cell_stats(summary, spec), cell_stats(back, spec)
        pd.testing.assert_frame_equal(a, b)
        assert len(a) > 0


# ---------------------------------------------------------------------------------------------
# Table 7: the project's table, as a declaration
def _summary7(values, method="full", compression="100", dataset="ml-100k", metric="test_mse", **kw):
    rows = [dict(task="regression", dataset=dataset, variant="original", model="nmf", method=method,
                 compression=compression, fold=f, seed=0, metric=metric, value=v, **kw) for f, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_paper_values_copied():
    assert paper_value("table7", "ml-100k", "full", "100") == 0.9283
    assert paper_value("table7", "ml-100k", "cel", "0.5") == 0.8906
    assert paper_value("table2", "ml-1m", "cel", "1", model="DIN") == 0.7787


def test_table7_cell_shows_mean_std_paper_delta():
    s = _summary7([0.90, 0.92, 0.94])
    tex = render(s, TABLES["table7"])
    # mean 0.92, sample std 0.02, delta 0.92 - 0.9283 = -0.0083
    assert "0.9200 $\\pm$ 0.0200$^{n=3}$" in tex
    assert "[0.9283; $-0.0083$]" in tex
    assert "\\toprule" in tex and "\\bottomrule" in tex
    # the declared frame: ML-100k at 100, 5, 1, 0.5 %, although only the full embedding has runs
    assert "Compression ratio & 100\\% & 5\\% & 1\\% & 0.5\\% \\\\" in tex
    assert "\\multicolumn{4}{c}{MovieLens-100k}" in tex
    stats = cell_stats(s, TABLES["table7"])
    assert stats.loc[0, "delta"] == pytest.approx(0.92 - 0.9283)
    assert (stats.loc[0, "n"], stats.loc[0, "paper"]) == (3, 0.9283)


def test_table7_rows_ordered_like_the_paper_and_unknown_datasets_get_columns():
    s = pd.concat([_summary7([1.0], method="cel", compression="5"), _summary7([0.9]),
                   _summary7([0.2], dataset="synth")])
    tex = render(s, TABLES["table7"])
    assert tex.index("Vanilla full embedding") < tex.index("CEL &")
    assert "synth" in tex and "[0.8689; $+0.1311$]" in tex
    cel = _row(tex, "CEL &").split(" & ")
    assert cel[1] == "\\shortstack{-- \\\\ \\scriptsize[0.8602]}"        # 100%: paper only
    # compressions not declared follow the declared ones, largest first
    more = pd.concat([s, _summary7([0.9], method="cel", compression="2"), _summary7([0.9], method="cel",
                                                                                   compression="10")])
    from dataclasses import replace as _replace

    open7 = _replace(TABLES["table7"], filters={k: v for k, v in TABLES["table7"].filters.items() if k != "compression"})
    assert "Compression ratio & 100\\% & 5\\% & 1\\% & 0.5\\% & 10\\% & 2\\% & 100\\% \\\\" in render(more, open7)
    assert "Compression ratio & 100\\% & 5\\% & 1\\% & 0.5\\% & 100\\% \\\\" in render(more, TABLES["table7"])
    assert cel[2] == "\\shortstack{1.0000 $\\pm$ 0.0000$^{n=1}$ \\\\ \\scriptsize[0.8689; $+0.1311$]}"


def test_table7_filters_out_other_models_variants_and_tasks():
    din = _summary7([5.0])
    din["model"] = "din"
    s = pd.concat([_summary7([0.90, 0.92]), din, _summary7([7.0], metric="test_rmse")])
    extra = _summary7([9.0, 9.0])
    extra["variant"] = "dense"
    conv = _summary7([0.7])
    conv["task"] = "conversion"
    stats = cell_stats(pd.concat([s, extra, conv]), TABLES["table7"])
    assert len(stats) == 1 and stats.loc[0, "mean"] == pytest.approx(0.91) and stats.loc[0, "n"] == 2


def test_table7_stored_size_shown_where_it_differs_from_the_nominal_ratio():
    s = pd.concat([_summary7([1.0, 1.1], method="cel", compression="5"),
                   _summary7([1.2, 1.2], method="modulo", compression="5"),
                   _summary7([6.56, 6.56], method="cel", compression="5", metric="item_compression_real"),
                   _summary7([4.99, 4.99], method="modulo", compression="5", metric="item_compression_real")])
    tex = render(s, TABLES["table7"])
    assert "stores 6.56\\%" in _row(tex, "CEL &")                 # assignment indices: more than M_q rows
    assert "stores" not in _row(tex, "Modulo &")                  # 84 of 1682 rows = 4.99%: the nominal 5%
    stats = cell_stats(s, TABLES["table7"]).set_index("method")
    assert stats.loc["cel", "stored_percent"] == pytest.approx(6.56)


def test_table7_ml1m_hashgnn_paper_value_comes_from_table2():
    spec = TABLES["table7"]
    assert spec.lookup_paper({"dataset": "ml-1m", "method": "hashgnn", "compression": "5"}) == 0.8491
    assert spec.lookup_paper({"dataset": "ml-1m", "method": "modulo", "compression": "5"}) == 1.0227
    assert spec.lookup_paper({"dataset": "ml-100k", "method": "hashgnn", "compression": "5"}) is None


def test_table7_claims_checked_against_our_means_and_the_papers():
    s = pd.concat([_summary7([0.95, 0.97], method="prehash_kmq", compression="1"),
                   _summary7([0.93], method="prehash_k4", compression="1"),
                   _summary7([0.90], method="jnkm", compression="100"), _summary7([0.92])])
    claims = check_claims(cell_stats(s, TABLES["table7"]), TABLES["table7"]).set_index("claim")
    kmq = claims.loc["prehash_kmq < prehash_k4"]
    assert kmq["compression"] == "1" and kmq["dataset"] == "ml-100k"
    assert not kmq["holds"] and kmq["paper_holds"]                                  # 0.96 vs 0.93
    assert kmq["ours_better"] == pytest.approx(0.96)
    assert claims.loc["jnkm < full", "holds"]
    assert "bh < modulo" not in claims.index                                        # no runs, no row
    assert len(claims) == 2


def test_table7_declaration():
    spec = TABLES["table7"]
    assert [a.name for a in spec.rows] == ["method"] and spec.rows[0].values == TABLE7_METHODS
    assert [a.name for a in spec.cols] == ["dataset", "compression"]
    assert spec.metric == "test_mse" and spec.fixed()["model"] == "nmf" and spec.fixed()["variant"] == "original"
    assert len(spec.claims) == 18 and spec.size_metric == "item_compression_real"


def test_write_table_writes_tex_cells_and_claims(tmp_path):
    s = pd.concat([_summary7([0.95, 0.97], method="prehash_kmq", compression="1"),
                   _summary7([0.93], method="prehash_k4", compression="1"),
                   _summary7([0.90], method="jnkm", compression="100"), _summary7([0.92])])
    out = tmp_path / "tables" / "table7.tex"
    lines = write_table(s, "table7", out)
    assert out.read_text() == render(s, TABLES["table7"])
    cells = pd.read_csv(tmp_path / "tables" / "table7.csv", dtype={"compression": str})
    assert set(cells["method"]) == {"prehash_kmq", "prehash_k4", "jnkm", "full"}
    claims = pd.read_csv(tmp_path / "tables" / "table7_claims.csv")
    assert len(claims) == 2 and len(lines) == 3
    assert lines[0].startswith("FAILS ") and "prehash_kmq < prehash_k4" in lines[0] and "0.9600 vs 0.9300" in lines[0]
    assert lines[-1].endswith("(1/2 claims hold)")
    with pytest.raises(ValueError, match="table99"):
        write_table(s, "table99", out)


# ---------------------------------------------------------------------------------------------
# The paper's other tables, declared
TABLE2_METHODS = ("full", "etree", "jnkm", "modulo", "bh", "ae", "hashgnn", "prehash_k4", "prehash_kmq", "cel",
                  "cel_lite")
TABLE2 = TableSpec(
    name="table2", caption="Test MSE, ML-1m.",
    rows=Axis("method", values=TABLE2_METHODS),
    cols=(Axis("model", values=("nmf", "din"), title="Feature Interaction Model"),
          Axis("compression", values=("100", "5", "1", "0.5"))),
    metric="test_mse",
    filters={"task": "regression", "dataset": "ml-1m", "variant": "original", "method": TABLE2_METHODS,
             "compression": ("100", "5", "1", "0.5")},
    paper=PaperRef("table2", ("{model}", "{method}", "{compression}"), keys={"model": {"nmf": "NMF", "din": "DIN"}}),
    claims=(Claim("cel", "prehash_kmq", ("5", "1", "0.5")), Claim("prehash_kmq", "modulo", ("5",))),
)


def test_table2_methods_by_model_and_compression(summary):
    tex = render(summary, TABLE2)
    assert "Feature Interaction Model & \\multicolumn{4}{c}{NMF} & \\multicolumn{4}{c}{DIN} \\\\" in tex
    assert "\\cmidrule(lr){2-5} \\cmidrule(lr){6-9}" in tex
    assert "\\begin{tabular}{lcccccccc}" in tex
    rows = [line.split(" & ")[0] for line in tex.splitlines() if " $\\pm$ " in line]
    # paper order, rows with runs only (JNKM: Table 12's run at 100%)
    assert rows == ["Vanilla full embedding", "JNKM", "Modulo", "PreHash ($K=M_q$)", "CEL"]
    cel = _row(tex, "CEL &").split(" & ")
    # DIN 5%: base 0.77 -> 0.782 +- 0.01 over 3 folds; paper 0.7718
    assert cel[6] == f"\\shortstack{{{_cell_text(0.782, STD, N, 0.7718)}}}"
    assert "[0.7718; $+0.0102$]" in cel[6]
    stats = cell_stats(summary, TABLE2)
    assert len(stats) == 2 * (1 + 4 + 3 + 1) + 1 and (stats["n"] == 3).all()
    _hand_cells(summary, TABLE2, stats)
    claims = check_claims(stats, TABLE2)
    assert len(claims) == 2 * 3 + 2 and claims["holds"].all() and claims["paper_holds"].all()
    assert set(claims["claim"]) == {"cel < prehash_kmq", "prehash_kmq < modulo"}


def test_seeds_are_averaged_within_a_fold_before_folds():
    rows = [dict(task="regression", dataset="ml-1m", variant="original", model="nmf", method="cel", compression="5",
                 fold=f, seed=s, metric="test_mse", value=v)
            for f, s, v in ((0, 0, 1.0), (0, 1, 2.0), (0, 2, 3.0), (1, 0, 4.0))]
    s = pd.DataFrame(rows)
    st = cell_stats(s, TABLE2).iloc[0]
    # fold 0: 2.0, fold 1: 4.0 -> mean 3.0 (not 2.5), std sqrt(2), n 2 folds, 4 runs
    assert (st["mean"], st["n"], st["runs"]) == (3.0, 2, 4) and st["std"] == pytest.approx(math.sqrt(2))
    by_seed = TableSpec(**{**TABLE2.__dict__, "aggregate": ("fold", "seed")})
    st = cell_stats(s, by_seed).iloc[0]
    # seed 0: folds 1.0, 4.0 -> 2.5; seed 1: 2.0; seed 2: 3.0 -> mean 2.5, std 0.5, n 3 seeds
    assert (st["mean"], st["n"]) == (2.5, 3) and st["std"] == pytest.approx(0.5)


def _table3(cols, **kw):
    return TableSpec(
        name="table3", caption="Test AUC (\\%) and logloss, conversion.",
        rows=Axis("method", values=("full", "modulo", "hashgnn", "prehash_kmq", "cel_lite")),
        cols=cols, filters={"task": "conversion", **kw.pop("filters", {})},
        paper=PaperRef("table3", ("{dataset}", "{model}", "{method}", "{compression}"),
                       keys={"model": {"din": "DIN", "deepfm": "DeepFM"}}, when={"metric": "test_auc"}),
        scale={"test_auc": 100.0}, digits=2,
        claims=(Claim("cel_lite", "modulo", ("10", "5", "2"), at_axis="compression"),
                Claim("modulo", "cel_lite", ("2",), at_axis="compression")),
        **kw)


TABLE3_METRICS = _table3((Axis("metric", values=("test_auc", "test_logloss"), labels={"test_auc": "AUC (\\%)"}),
                          Axis("compression", values=("100", "10", "5", "2"))),
                         filters={"dataset": "video_games", "model": "din"})
TABLE3 = _table3((Axis("dataset", values=("video_games", "electronics")),
                  Axis("model", values=("deepfm", "din"), title="Feature Interaction"),
                  Axis("compression", values=("100", "10", "5", "2"))), metric="test_auc")


def test_table3_metrics_as_columns_higher_auc_wins(summary):
    tex = render(summary, TABLE3_METRICS)
    assert "Metric & \\multicolumn{4}{c}{AUC (\\%)} & \\multicolumn{4}{c}{Logloss} \\\\" in tex
    cel = _row(tex, "CEL-Lite &").split(" & ")
    # AUC 5%: base 0.70 -> 71.20 +- 1.00 (in %); paper 73.50 -> delta -2.30
    assert cel[3] == f"\\shortstack{{{_cell_text(71.2, 1.0, N, 73.50, digits=2)}}}"
    # logloss is not scaled and has no published value
    assert cel[7] == f"\\shortstack{{{_cell_text(0.512, 0.01, N, digits=2)}}}"
    stats = cell_stats(summary, TABLE3_METRICS)
    _hand_cells(summary, TABLE3_METRICS, stats)
    direction = dict(zip(stats["metric"], stats["higher_is_better"]))
    assert direction == {"test_auc": True, "test_logloss": False}
    claims = check_claims(stats, TABLE3_METRICS)
    auc, ll = claims[claims["metric"] == "test_auc"], claims[claims["metric"] == "test_logloss"]
    # CEL-Lite: higher AUC (71.2 vs 61.2) and lower logloss (0.512 vs 0.612) -> holds in both directions
    assert set(auc["claim"]) == {"cel_lite > modulo", "modulo > cel_lite"}
    assert set(ll["claim"]) == {"cel_lite < modulo", "modulo < cel_lite"}
    assert claims.set_index("claim").loc["cel_lite > modulo", "holds"].all()
    assert claims.set_index("claim").loc["cel_lite < modulo", "holds"].all()
    assert not claims.set_index("claim").loc[["modulo > cel_lite", "modulo < cel_lite"], "holds"].any()
    assert auc.set_index("claim").loc["cel_lite > modulo", "paper_holds"].all()       # 73.80 > 63.35 ...
    assert ll["paper_holds"].isna().all()


def test_table3_three_column_levels(summary):
    tex = render(summary, TABLE3)
    assert "Dataset & \\multicolumn{8}{c}{Video Games} & \\multicolumn{8}{c}{Electronics} \\\\" in tex
    assert ("Feature Interaction & \\multicolumn{4}{c}{DeepFM} & \\multicolumn{4}{c}{DIN} & "
            "\\multicolumn{4}{c}{DeepFM} & \\multicolumn{4}{c}{DIN} \\\\") in tex
    # Electronics, DeepFM, 2%: Modulo 61.20 against the paper's 48.61
    modulo = _row(tex, "Modulo &").split(" & ")
    assert modulo[12] == f"\\shortstack{{{_cell_text(61.2, 1.0, N, 48.61, digits=2)}}}"
    stats = cell_stats(summary, TABLE3)
    assert len(stats) == 2 * 2 * (1 + 3 + 4)
    _hand_cells(summary, TABLE3, stats)


TABLE5 = TableSpec(
    name="table5", caption="Rule-based clusterings, ML-1m.",
    rows=(Axis("param.init", values=("genre", "avg_rating", "random"), title="Initialization",
               labels={"genre": "By Genre", "avg_rating": "By Avr. Rating", "random": "None"}),
          Axis("param.cluster_after_init", values=("False", "True"), title="Continue Running",
               labels={"False": "--", "True": "CEL"})),
    cols=Axis("compression", values=("0.486", "1.08", "5.4"), title="Number of clusters ($M_q$)",
              labels={"0.486": "18", "1.08": "40", "5.4": "200"}),
    metric="test_mse",
    filters={"dataset": "ml-1m", "model": "nmf", "variant": "original", "param.base": "cel",
             "compression": ("0.486", "1.08", "5.4")},
    paper=PaperRef("table5", ("{param.init+param.cluster_after_init}", "{compression}"),
                   keys={"param.init+param.cluster_after_init": {
                       "genre+False": "genre_only", "avg_rating+False": "avg_rating_only",
                       "genre+True": "genre_then_cel", "avg_rating+True": "avg_rating_then_cel",
                       "random+True": "cel"},
                       "compression": {"0.486": "18", "1.08": "40", "5.4": "200"}}),
    claims=(Claim("True", "False", axis="param.cluster_after_init"),),
)


def test_table5_rule_based_clusterings_as_two_row_axes(summary):
    tex = render(summary, TABLE5)
    assert "\\begin{tabular}{llccc}" in tex
    assert " & Number of clusters ($M_q$) & 18 & 40 & 200 \\\\" in tex
    assert "Initialization & Continue Running & & & \\\\" in tex
    rows = [" & ".join(line.split(" & ")[:2]) for line in tex.splitlines() if " $\\pm$ " in line]
    assert rows == ["By Genre & --", "By Genre & CEL", "By Avr. Rating & --", "By Avr. Rating & CEL", "None & CEL"]
    genre_only = _row(tex, "By Genre & -- &").split(" & ")
    assert genre_only[2] == f"\\shortstack{{{_cell_text(1.062, STD, N, 1.0515)}}}"
    assert genre_only[3] == "--"                                                     # not published, not run
    assert "[0.7784;" in _row(tex, "None & CEL &")                                   # CEL at 200 clusters
    stats = cell_stats(summary, TABLE5)
    assert len(stats) == 1 + 3 * 4
    _hand_cells(summary, TABLE5, stats)
    claims = check_claims(stats, TABLE5)
    assert len(claims) == 4 and claims["holds"].all()         # genre at 18; avg rating at 18, 40, 200
    assert set(claims["where"]) == {"param.init=genre, compression=0.486", "param.init=avg_rating, compression=0.486",
                                    "param.init=avg_rating, compression=1.08", "param.init=avg_rating, compression=5.4"}


SPLIT_METHODS = ("cel", "random_split", "bisecting_2means_user", "bisecting_2means_gradient",
                 "gradient_random_projection")
TABLE6 = TableSpec(
    name="table6", caption="Split methods, 1%.",
    rows=Axis("param.split_method", values=("random", "bisect_user", "bisect_gradient", "random_projection", "gpca"),
              labels={"random": "Random Split", "bisect_user": "User-Inspired Bisecting 2-Means",
                      "bisect_gradient": "Gradient Bisecting 2-Means",
                      "random_projection": "Gradient Random Projection", "gpca": "GPCA"}),
    cols=Axis("dataset", values=("ml-100k", "ml-1m"), title="MovieLens"),
    metric="test_mse",
    filters={"compression": "1", "model": "nmf", "variant": "original", "method": SPLIT_METHODS},
    paper=PaperRef("table6", ("{param.split_method}", "{dataset}"),
                   keys={"param.split_method": {"random": "random_split", "bisect_user": "bisecting_2means_user",
                                                "bisect_gradient": "bisecting_2means_gradient",
                                                "random_projection": "gradient_random_projection"}}),
    claims=(*(Claim("gpca", m) for m in ("random", "bisect_user", "bisect_gradient", "random_projection")),
            Claim("bisect_gradient", "bisect_user")),
)


def test_table6_split_methods(summary):
    tex = render(summary, TABLE6)
    rows = [line.split(" & ")[0] for line in tex.splitlines() if " $\\pm$ " in line]
    assert rows == ["Random Split", "User-Inspired Bisecting 2-Means", "Gradient Bisecting 2-Means",
                    "Gradient Random Projection", "GPCA"]
    gpca = _row(tex, "GPCA &").split(" & ")
    assert gpca[1] == f"\\shortstack{{{_cell_text(0.882, STD, N, 0.8707)}}}"
    assert gpca[2].startswith(f"\\shortstack{{{_cell_text(0.802, STD, N, 0.7858)}}}")
    stats = cell_stats(summary, TABLE6)
    _hand_cells(summary, TABLE6, stats)
    claims = check_claims(stats, TABLE6)
    assert len(claims) == 10 and claims["holds"].all() and claims["paper_holds"].all()


def test_runs_that_an_axis_does_not_separate_are_an_error(summary):
    loose = TableSpec(**{**TABLE6.__dict__, "filters": {"compression": "1", "model": "nmf", "dataset": "ml-1m"}})
    with pytest.raises(ValueError, match=r"table table6: 4 runs in one cell .*'param.split_method': 'gpca'") as e:
        cell_stats(summary, loose)         # the GPCA cell would mix CEL with CEL (no split) and other t1
    assert "'method'" in str(e.value) and "'param.split'" in str(e.value) and "'param.t1'" in str(e.value)


TABLE8 = TableSpec(
    name="table8", caption="Split vs no split, ML-1m.",
    rows=Axis("param.split", values=(False, True), labels={False: "CEL (no split)", True: "CEL"}),
    cols=(Axis("model", values=("nmf", "din"), title="MovieLens-1m"), Axis("compression", values=("100", "1", "0.5"))),
    metric="test_mse",
    filters={"dataset": "ml-1m", "variant": "original", "method": ("cel", "cel_no_split"),
             "compression": ("100", "1", "0.5")},
    paper=PaperRef("table8", ("{model}", "{param.split}", "{compression}"),
                   keys={"model": {"nmf": "NMF", "din": "DIN"}, "param.split": {"False": "cel_no_split",
                                                                                "True": "cel"}}),
    claims=(Claim(True, False),),
)


def test_table8_split_vs_no_split(summary):
    tex = render(summary, TABLE8)
    no_split = _row(tex, "CEL (no split) &").split(" & ")
    assert len(no_split) == 1 + 6
    assert no_split[1] == f"\\shortstack{{{_cell_text(0.772, STD, N, 0.7582)}}}"      # NMF 100%
    assert no_split[6].startswith(f"\\shortstack{{{_cell_text(0.807, STD, N, 0.8023)}}}")  # DIN 0.5%
    assert tex.index("CEL (no split) &") < tex.index("\nCEL &")
    stats = cell_stats(summary, TABLE8)
    assert len(stats) == 12
    _hand_cells(summary, TABLE8, stats)
    claims = check_claims(stats, TABLE8)
    assert len(claims) == 6 and claims["holds"].all() and claims["paper_holds"].all()
    assert set(claims["claim"]) == {"True < False"}


TABLE9 = TableSpec(
    name="table9", caption="GPCA thresholds, 2%.",
    rows=Axis("param.delta", values=("zero", "median", "balanced"),
              labels={"zero": "$\\delta = 0$", "median": "median", "balanced": "balanced"}),
    cols=Axis("dataset", values=("ml-100k", "ml-1m"), title="MovieLens"),
    metric="test_mse",
    filters={"compression": "2", "model": "nmf", "variant": "original",
             "method": ("cel", "delta_median", "delta_balanced")},
    paper=PaperRef("table9", ("delta_{param.delta}", "{dataset}")),
    claims=(Claim("zero", "median"), Claim("zero", "balanced")),
)


def test_table9_delta(summary):
    tex = render(summary, TABLE9)
    zero = _row(tex, "$\\delta = 0$ &").split(" & ")
    assert zero[1] == f"\\shortstack{{{_cell_text(0.882, STD, N, 0.8684)}}}"
    assert "[0.8691; $+0.0149$]" in _row(tex, "median &")          # 0.884 - 0.8691
    stats = cell_stats(summary, TABLE9)
    assert len(stats) == 6
    _hand_cells(summary, TABLE9, stats)
    claims = check_claims(stats, TABLE9)
    assert len(claims) == 4 and claims["holds"].all()


TABLE10 = TableSpec(
    name="table10", caption="Reassignment interval, ML-1m.",
    rows=Axis("metric", values=("train_mse", "test_mse"),
              labels={"train_mse": "CEL (training MSE)", "test_mse": "CEL (test MSE)"}),
    cols=(Axis("compression", values=("0.5", "1")), Axis("param.t1", values=(20, 40, 100), title="$t_1$")),
    filters={"dataset": "ml-1m", "model": "nmf", "variant": "original", "compression": ("0.5", "1"),
             "method": ("cel", "cel_t1_20", "cel_t1_100")},
    paper=PaperRef("table10", ("compression_{compression}", "{metric}", "{param.t1}"),
                   keys={"metric": {"train_mse": "train", "test_mse": "test"}}),
    claims=(Claim(40, 20, ("test_mse",), axis="param.t1", at_axis="metric"),
            Claim(40, 100, ("test_mse",), axis="param.t1", at_axis="metric"),
            Claim(20, 100, ("train_mse",), axis="param.t1", at_axis="metric")),
)


def test_table10_reassignment_interval_metric_rows(summary):
    tex = render(summary, TABLE10)
    assert "$t_1$ & 20 & 40 & 100 & 20 & 40 & 100 \\\\" in tex
    assert tex.index("CEL (training MSE)") < tex.index("CEL (test MSE)")
    test = _row(tex, "CEL (test MSE) &").split(" & ")
    assert test[2] == f"\\shortstack{{{_cell_text(0.812, STD, N, 0.7926)}}}"          # 0.5%, t1 = 40
    train = _row(tex, "CEL (training MSE) &").split(" & ")
    assert train[4] == f"\\shortstack{{{_cell_text(0.702, STD, N, 0.7071)}}}"         # 1%, t1 = 20
    stats = cell_stats(summary, TABLE10)
    assert len(stats) == 12
    _hand_cells(summary, TABLE10, stats)
    claims = check_claims(stats, TABLE10).set_index(["claim", "compression"])
    assert len(claims) == 6 and set(claims["metric"]) == {"test_mse", "train_mse"}
    # test MSE, t1 = 40 against 20: 0.812 < 0.813 (0.5%), 0.802 < 0.807 (1%)
    assert claims.loc[("40 < 20", "0.5"), "holds"] and claims.loc[("40 < 20", "1"), "holds"]
    # against 100 at 1%: 0.802 > 0.800, although the paper has 0.7858 < 0.7860
    row = claims.loc[("40 < 100", "1")]
    assert not row["holds"] and row["paper_holds"] and row["ours_worse"] == pytest.approx(0.800)
    assert claims.loc[("40 < 100", "0.5"), "holds"]
    # training MSE: more reassignments fit better, 0.727 < 0.737 and 0.702 < 0.717
    assert claims.loc[("20 < 100", "0.5"), "holds"] and claims.loc[("20 < 100", "1"), "holds"]


TABLE12 = TableSpec(
    name="table12", caption="Sparsity.",
    rows=Axis("method", values=("jnkm", "cel"), labels={"cel": "CEL (cpr. ratio 2\\%)"}),
    cols=(Axis("dataset", values=("ml-100k", "ml-1m")),
          Axis("variant", values=("original", "density50", "density25"),
               labels={"original": "default", "density50": "50\\%", "density25": "25\\%"})),
    metric="test_mse",
    filters={"model": "nmf", "method+compression": ("jnkm+100", "cel+2")},
    paper=PaperRef("table12", ("{dataset}", "{method}", "{variant}"),
                   keys={"method": {"cel": "cel_cr2"}, "variant": {"original": "default", "density50": "50",
                                                                   "density25": "25"}}),
    claims=(Claim("cel", "jnkm"),),
)


def test_table12_density_with_a_joint_filter(summary):
    tex = render(summary, TABLE12)
    assert "Density & default & 50\\% & 25\\% & default & 50\\% & 25\\% \\\\" in tex
    cel = _row(tex, "CEL (cpr. ratio 2\\%) &").split(" & ")
    assert cel[3] == f"\\shortstack{{{_cell_text(0.952, STD, N, 0.9396)}}}"        # ML-100k, 25%
    jnkm = _row(tex, "JNKM &").split(" & ")
    assert jnkm[4] == f"\\shortstack{{{_cell_text(0.772, STD, N, 0.7626)}}}"       # ML-1m, default
    stats = cell_stats(summary, TABLE12)
    assert len(stats) == 12 and set(zip(stats["method"], stats["n"])) == {("cel", 3), ("jnkm", 3)}
    _hand_cells(summary, TABLE12, stats)
    claims = check_claims(stats, TABLE12).set_index(["dataset", "variant"])
    assert len(claims) == 6
    # CEL wins everywhere but on the original ML-1m (0.792 vs 0.772), as in the paper (0.7846 vs 0.7626)
    assert not claims.loc[("ml-1m", "original"), "holds"] and not claims.loc[("ml-1m", "original"), "paper_holds"]
    assert claims.drop(("ml-1m", "original"))["holds"].all()


TABLE13 = TableSpec(
    name="table13", caption="Optimizers, ML-100k.",
    rows=Axis("compression", values=("1", "2"), title="Compression Ratio", fmt="{}\\%"),
    cols=(Axis("train.optimizer", values=("gd", "adam"), labels={"gd": "GD", "adam": "Adam"}, title="Optimizer"),
          Axis("param.grad_avg", values=(True, False), labels={True: "+ gradient averaging", False: "plain"},
               title="")),
    metric="test_mse",
    filters={"dataset": "ml-100k", "model": "nmf", "variant": "original",
             "method": ("cel", "cel_no_grad_avg", "cel_adam", "cel_adam_no_grad_avg")},
    paper=PaperRef("table13", ("{train.optimizer+param.grad_avg}", "{compression}"),
                   keys={"train.optimizer+param.grad_avg": {"gd+True": "gd_gradient_averaging", "gd+False": "gd",
                                                            "adam+True": "adam_gradient_averaging",
                                                            "adam+False": "adam"}}),
    claims=(Claim(True, False, axis="param.grad_avg"), Claim("gd", "adam", axis="train.optimizer", at=(True,))),
)


def test_table13_optimizer_by_gradient_averaging(summary):
    tex = render(summary, TABLE13)
    assert "Optimizer & \\multicolumn{2}{c}{GD} & \\multicolumn{2}{c}{Adam} \\\\" in tex
    assert "Compression Ratio & & & & \\\\" in tex
    two = _row(tex, "2\\% &").split(" & ")
    assert two[1] == f"\\shortstack{{{_cell_text(0.882, STD, N, 0.9012)}}}"
    assert two[2] == f"\\shortstack{{{_cell_text(1.022, STD, N, 1.019)}}}"
    assert two[4].startswith(f"\\shortstack{{{_cell_text(0.942, STD, N, 0.9280)}}}")
    stats = cell_stats(summary, TABLE13)
    assert len(stats) == 8
    _hand_cells(summary, TABLE13, stats)
    claims = check_claims(stats, TABLE13)
    assert len(claims) == 4 + 2 and claims["holds"].all()
    assert claims["paper_holds"].all()


TABLE14 = TableSpec(
    name="table14", caption="User optimizer and learning rate, ML-100k, 2%.",
    rows=Axis("train.optimizer", values=("gd",), labels={"gd": "GD + gradient averaging"}, title="Item"),
    cols=(Axis("train.user_optimizer", values=("gd", "adam", "adagrad", "rmsprop"), title="User",
               labels={"gd": "GD", "adam": "Adam", "adagrad": "Adagrad", "rmsprop": "RMS-prop"}),
          Axis("train.user_lr", values=(1e-05, 0.0001, 0.0005, 0.001), title="learning rate",
               labels={1e-05: "0.00001"})),
    metric="test_mse",
    filters={"dataset": "ml-100k", "model": "nmf", "variant": "original", "compression": "2",
             "param.grad_avg": True},
    paper=PaperRef("table14", ("user_{train.user_optimizer}", "{train.user_lr}"),
                   keys={"train.user_lr": {1e-05: "0.00001"}}),
)


def test_table14_irregular_nested_columns_follow_the_paper(summary):
    tex = render(summary, TABLE14)
    # only the 8 published (optimizer, learning rate) pairs of the 16 declared
    assert "\\begin{tabular}{lcccccccc}" in tex
    assert ("User & \\multicolumn{3}{c}{GD} & \\multicolumn{2}{c}{Adam} & \\multicolumn{2}{c}{Adagrad} & "
            "\\multicolumn{1}{c}{RMS-prop} \\\\") in tex
    assert "learning rate & 0.00001 & 0.0001 & 0.0005 & 0.0001 & 0.001 & 0.0001 & 0.001 & 0.0001 \\\\" in tex
    row = _row(tex, "GD + gradient averaging &").split(" & ")
    assert row[1] == f"\\shortstack{{{_cell_text(0.912, STD, N, 0.905)}}}"          # user GD, 1e-5
    assert row[2] == "\\shortstack{-- \\\\ \\scriptsize[0.8664]}"               # CEL's own runs lack the user keys
    assert row[5] == f"\\shortstack{{{_cell_text(0.882, STD, N, 0.8720)}}}"         # Adam 1e-3
    assert row[8].startswith(f"\\shortstack{{{_cell_text(0.887, STD, N, 0.8754)}}}")  # RMSprop 1e-4
    stats = cell_stats(summary, TABLE14)
    assert set(zip(stats["train.user_optimizer"], stats["train.user_lr"])) == {
        ("gd", "1e-05"), ("adam", "0.001"), ("rmsprop", "0.0001")}
    _hand_cells(summary, TABLE14, stats)


# ---------------------------------------------------------------------------------------------
# Declarations are checked
def test_unknown_axes_are_named():
    with pytest.raises(ValueError, match="'optimiser'"):
        Axis("optimiser")
    with pytest.raises(ValueError, match="'datset'"):
        TableSpec(name="t", caption="", rows="method", cols="compression", metric="test_mse",
                  filters={"datset": "ml-1m"})
    with pytest.raises(ValueError, match="'modle'"):
        PaperRef("table2", ("{modle}", "{method}"))
    with pytest.raises(ValueError, match=r"\['model'\]"):
        TableSpec(name="t", caption="", rows="method", cols="compression", metric="test_mse",
                  paper=PaperRef("table2", ("{model}", "{method}", "{compression}")))
    with pytest.raises(ValueError, match="'dataset'"):
        TableSpec(name="t", caption="", rows="method", cols="compression", metric="test_mse",
                  claims=(Claim("cel", "full", axis="dataset"),))
    with pytest.raises(ValueError, match="no metric"):
        TableSpec(name="t", caption="", rows="method", cols="compression")
    with pytest.raises(ValueError, match="must list its metrics"):
        TableSpec(name="t", caption="", rows="method", cols=("metric",))


def test_a_parameter_no_run_has_gives_an_empty_table(summary):
    spec = TableSpec(name="t", caption="", rows="param.nonexistent", cols="compression", metric="test_mse")
    assert cell_stats(summary, spec).empty
    assert "no runs yet" in render(summary, spec)


def test_filters_select_runs(summary):
    one = TableSpec(**{**TABLE9.__dict__, "filters": {**TABLE9.filters, "dataset": "ml-100k"}})
    stats = cell_stats(summary, one)
    assert set(stats["dataset"]) == {"ml-100k"} and len(stats) == 3
    two = TableSpec(**{**TABLE9.__dict__, "filters": {**TABLE9.filters, "method": ("cel", "delta_median")}})
    assert set(cell_stats(summary, two)["param.delta"]) == {"zero", "median"}
    # a filter on a parameter: only runs with delta = median
    three = TableSpec(**{**TABLE9.__dict__, "filters": {**TABLE9.filters, "param.delta": "median"}})
    stats = cell_stats(summary, three)
    assert list(stats["param.delta"]) == ["median", "median"]
    assert stats.set_index("dataset").loc["ml-1m", "mean"] == pytest.approx(0.793)



# ---------------------------------------------------------------------------------------------
# Paired significance tests of the claims (READINGS, "Protocol and statistics")
from scipy import stats as sps  # noqa: E402


def _runs(per_method, metric="test_mse", task="regression", compression="5"):
    """method -> {fold: value or [seed values]} as a summary."""
    rows = []
    for method, folds in per_method.items():
        for f, vals in folds.items():
            for seed, v in enumerate(vals if isinstance(vals, (list, tuple)) else [vals]):
                rows.append(dict(task=task, dataset="ml-1m", variant="original", model="nmf", method=method,
                                 compression=compression, fold=f, seed=seed, metric=metric, value=v))
    return pd.DataFrame(rows)


def _spec(claims, metric="test_mse", **kw):
    return TableSpec(name="tsig", caption="", rows=Axis("method"), cols=Axis("compression"), metric=metric,
                     claims=claims, **kw)


def _by_hand(d):
    """One-sided paired t by the textbook formula: mean(d) / (sd(d) / sqrt(n)), p = P(T_{n-1} > t)."""
    n = len(d)
    m = sum(d) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1))
    t = m / (sd / math.sqrt(n))
    return m, t, float(sps.t.sf(t, n - 1))


CEL5 = [0.80, 0.82, 0.81, 0.83, 0.79]
FULL5 = [0.83, 0.84, 0.85, 0.84, 0.82]


def test_paired_t_matches_the_formula_lower_is_better():
    s = _runs({"cel": dict(enumerate(CEL5)), "full": dict(enumerate(FULL5))})
    spec = _spec((Claim("cel", "full"),))
    row = check_claims(cell_stats(s, spec), spec, s).iloc[0]
    # MSE: lower is better, d = worse - better = full - cel = [0.03, 0.02, 0.04, 0.01, 0.03]
    m, t, p = _by_hand([w - b for b, w in zip(CEL5, FULL5)])
    assert (m, t) == (pytest.approx(0.026), pytest.approx(5.0990195, rel=1e-6))
    assert row["claim"] == "cel < full" and row["n_pairs"] == 5
    assert row["mean_diff"] == pytest.approx(m, abs=1e-12)
    assert row["t"] == pytest.approx(t, rel=1e-9) and row["p_value"] == pytest.approx(p, rel=1e-9)
    assert p < 0.01
    # a single claim row: Holm changes nothing
    assert row["p_holm"] == pytest.approx(p, rel=1e-9) and bool(row["significant"])
    assert math.isnan(row["margin"])
    # the reverse claim has the complementary one-sided p and the opposite signs
    spec_rev = _spec((Claim("full", "cel"),))
    rev = check_claims(cell_stats(s, spec_rev), spec_rev, s).iloc[0]
    assert rev["mean_diff"] == pytest.approx(-m) and rev["t"] == pytest.approx(-t)
    assert rev["p_value"] == pytest.approx(1 - p, rel=1e-9) and not rev["significant"]
    # without the summary there are no folds to pair
    bare = check_claims(cell_stats(s, spec), spec).iloc[0]
    assert bare["n_pairs"] == 0 and math.isnan(bare["p_value"]) and not bare["significant"]


def test_higher_is_better_flips_the_direction():
    # the same numbers as AUC: "cel_lite > modulo" where cel_lite has the higher values
    s = _runs({"cel_lite": dict(enumerate(FULL5)), "modulo": dict(enumerate(CEL5))}, metric="test_auc",
              task="conversion")
    spec = _spec((Claim("cel_lite", "modulo"), Claim("modulo", "cel_lite")), metric="test_auc")
    claims = check_claims(cell_stats(s, spec), spec, s).set_index("claim")
    m, t, p = _by_hand([b - w for b, w in zip(FULL5, CEL5)])         # d = better - worse
    up = claims.loc["cel_lite > modulo"]
    assert up["mean_diff"] == pytest.approx(m) and up["t"] == pytest.approx(t) and up["p_value"] == pytest.approx(p)
    down = claims.loc["modulo > cel_lite"]
    assert down["t"] == pytest.approx(-t) and down["p_value"] == pytest.approx(1 - p)
    # as MSE (lower is better) the same values make the first claim the losing one
    s_mse = _runs({"cel_lite": dict(enumerate(FULL5)), "modulo": dict(enumerate(CEL5))})
    spec_mse = _spec((Claim("cel_lite", "modulo"),))
    mse = check_claims(cell_stats(s_mse, spec_mse), spec_mse, s_mse).iloc[0]
    assert mse["claim"] == "cel_lite < modulo" and mse["p_value"] == pytest.approx(1 - p) and mse["t"] < 0


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # monotone in the sorted order and capped at 1; NaN (no test) stays NaN and is not counted in m
    out = holm([0.5, float("nan"), 0.02, 0.4])
    assert math.isnan(out[1]) and list(out[[0, 2, 3]]) == pytest.approx([0.8, 0.06, 0.8])
    assert list(holm([0.6, 0.7])) == pytest.approx([1.0, 1.0])
    assert holm([]).shape == (0,)


def test_holm_runs_over_all_claim_rows_of_the_table():
    # three claims, at two compressions each where the runs exist
    vals = {"cel": [0.80, 0.82, 0.81, 0.83, 0.79], "jnkm": [0.81, 0.825, 0.83, 0.835, 0.80],
            "full": [0.83, 0.84, 0.85, 0.84, 0.82]}
    s = pd.concat([_runs({k: dict(enumerate(np.array(v) + shift)) for k, v in vals.items()}, compression=c)
                   for c, shift in (("5", 0.0), ("1", 0.01))])
    s.loc[(s["compression"] == "1") & (s["method"] == "full") & (s["fold"] == 2), "value"] += 0.02
    spec = _spec((Claim("cel", "jnkm"), Claim("cel", "full"), Claim("jnkm", "full")))
    claims = check_claims(cell_stats(s, spec), spec, s)
    assert len(claims) == 6 and claims["p_value"].notna().all()
    expect = holm(claims["p_value"].to_numpy())
    assert claims["p_holm"].to_numpy() == pytest.approx(expect)
    # by hand: the smallest p is multiplied by 6, not by its claim's 2 rows
    i = int(claims["p_value"].idxmin())
    assert claims.loc[i, "p_holm"] == pytest.approx(min(1.0, 6 * claims.loc[i, "p_value"]))
    assert list(claims["significant"]) == list(claims["p_holm"] < 0.05)
    # a stricter declared alpha
    strict = TableSpec(**{**spec.__dict__, "alpha": 1e-9})
    assert not check_claims(cell_stats(s, strict), strict, s)["significant"].any()
    with pytest.raises(ValueError, match="alpha"):
        TableSpec(**{**spec.__dict__, "alpha": 1.5})


def test_seeds_are_averaged_within_a_fold_before_pairing():
    # fold 0 has three seeds for cel: 0.66, 1.04, 0.90 -> 0.8667; each seed alone would pair differently
    cel = {0: [0.66, 1.04, 0.90], 1: 0.82, 2: 0.81, 3: 0.83}
    full = {0: 0.86, 1: 0.84, 2: 0.85, 3: 0.84}
    s = _runs({"cel": cel, "full": full})
    spec = _spec((Claim("cel", "full"),))
    fv = fold_values(s, spec).set_index(["method", "fold"])
    assert fv.loc[("cel", "0"), "value"] == pytest.approx(2.6 / 3) and fv.loc[("cel", "0"), "runs"] == 3
    row = check_claims(cell_stats(s, spec), spec, s).iloc[0]
    fold_means = [2.6 / 3, 0.82, 0.81, 0.83]
    for one_seed in cel[0]:                 # pairing one seed of fold 0 would give another t
        _, t_seed, _ = _by_hand([w - b for b, w in zip([one_seed, 0.82, 0.81, 0.83], full.values())])
        assert abs(row["t"] - t_seed) > 0.1
    m, t, p = _by_hand([w - b for b, w in zip(fold_means, full.values())])
    assert row["n_pairs"] == 4
    assert row["mean_diff"] == pytest.approx(m) and row["t"] == pytest.approx(t) and row["p_value"] == pytest.approx(p)
    # pairing each seed with its fold's value instead (6 "pairs") would give another answer
    runs = [(0.66, 0.86), (1.04, 0.86), (0.90, 0.86), (0.82, 0.84), (0.81, 0.85), (0.83, 0.84)]
    _, _, p_runs = _by_hand([w - b for b, w in runs])
    assert abs(p_runs - p) > 0.05
    # and averaging the fold means first reproduces the cell mean
    assert row["ours_better"] == pytest.approx(sum(fold_means) / 4)


def test_only_folds_both_sides_have_are_paired():
    cel = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.60, 4: 0.55}                 # folds 3, 4: only cel
    full = {0: 0.83, 1: 0.84, 2: 0.85, 7: 0.10}                         # fold 7: only full
    s = _runs({"cel": cel, "full": full})
    spec = _spec((Claim("cel", "full"),))
    row = check_claims(cell_stats(s, spec), spec, s).iloc[0]
    m, t, p = _by_hand([0.83 - 0.80, 0.84 - 0.82, 0.85 - 0.81])
    assert row["n_pairs"] == 3
    assert row["mean_diff"] == pytest.approx(m) and row["t"] == pytest.approx(t) and row["p_value"] == pytest.approx(p)
    # the cells' means still use all their folds
    assert row["ours_better"] == pytest.approx(sum(cel.values()) / 5)
    # one shared fold: no test
    s1 = _runs({"cel": {0: 0.8, 1: 0.81}, "full": {1: 0.9, 2: 0.95}})
    one = check_claims(cell_stats(s1, spec), spec, s1).iloc[0]
    assert one["n_pairs"] == 1 and math.isnan(one["t"]) and math.isnan(one["p_value"])
    assert math.isnan(one["p_holm"]) and not one["significant"]
    assert one["mean_diff"] == pytest.approx(0.09)


def test_constant_differences_have_no_test(summary):
    # the synthetic grid: every method has the same fold / seed offsets, so the differences are equal
    # up to rounding in every fold: nothing to test against, rather than t ~ 1e14
    claims = check_claims(cell_stats(summary, TABLE2), TABLE2, summary)
    assert len(claims) == 8 and (claims["n_pairs"] == 3).all()
    assert claims["p_value"].isna().all() and claims["t"].isna().all() and not claims["significant"].any()
    row = claims.set_index(["claim", "model", "compression"]).loc[("cel < prehash_kmq", "nmf", "5")]
    assert row["mean_diff"] == pytest.approx(0.80 - 0.78)
    # differences equal only up to rounding (ptp 5.6e-17): scipy alone would give t ~ 2.7e15, p ~ 1e-61
    base = [0.1, 0.7, 0.3, 0.9, 0.6]
    s2 = _runs({"cel": dict(enumerate(base)), "full": {f: v + 0.03 for f, v in enumerate(base)}})
    spec = _spec((Claim("cel", "full"),))
    row = check_claims(cell_stats(s2, spec), spec, s2).iloc[0]
    assert row["n_pairs"] == 5 and row["mean_diff"] == pytest.approx(0.03)
    assert math.isnan(row["t"]) and math.isnan(row["p_value"]) and not row["significant"]


def test_non_inferiority_margin():
    # cel_lite's AUC is a little below full's in every fold, by less than the margin 0.001
    full = [0.7000, 0.7100, 0.7050, 0.7200, 0.6950]
    lite = [0.6996, 0.7093, 0.7048, 0.7192, 0.6947]
    s = _runs({"cel_lite": dict(enumerate(lite)), "full": dict(enumerate(full))}, metric="test_auc",
              task="conversion")
    spec = _spec((Claim("cel_lite", "full", margin=0.001), Claim("cel_lite", "full")), metric="test_auc")
    claims = check_claims(cell_stats(s, spec), spec, s)
    ni, sup = claims.iloc[0], claims.iloc[1]
    d = [b - w for b, w in zip(lite, full)]                              # higher is better: lite - full < 0
    m, t, p = _by_hand([x + 0.001 for x in d])                           # H1: mean d + margin > 0
    assert ni["claim"] == "cel_lite >= full" and ni["margin"] == pytest.approx(0.001)
    assert ni["mean_diff"] == pytest.approx(sum(d) / 5)                  # the margin is not in mean_diff
    assert ni["mean_diff"] < 0 and ni["holds"]                          # worse, but within the margin
    assert ni["t"] == pytest.approx(t) and ni["p_value"] == pytest.approx(p) and p < 0.01
    # the same rows as a superiority claim: the wrong direction, p > 0.5, fails
    assert sup["claim"] == "cel_lite > full" and math.isnan(sup["margin"])
    assert not sup["holds"] and sup["p_value"] > 0.5 and not sup["significant"]
    assert sup["p_value"] == pytest.approx(_by_hand(d)[2])
    # Holm over both rows
    assert ni["p_holm"] == pytest.approx(2 * p) and ni["significant"]
    # lower is better (MSE, margin 0.002): cel_lite 0.001 above full is non-inferior
    s2 = _runs({"cel_lite": dict(enumerate(np.array(FULL5) + [0.001, 0.0012, 0.0008, 0.0011, 0.0009])),
                "full": dict(enumerate(FULL5))})
    spec2 = _spec((Claim("cel_lite", "full", margin=0.002),))
    r2 = check_claims(cell_stats(s2, spec2), spec2, s2).iloc[0]
    d2 = [-x for x in (0.001, 0.0012, 0.0008, 0.0011, 0.0009)]           # worse - better
    assert r2["claim"] == "cel_lite <= full" and r2["mean_diff"] == pytest.approx(sum(d2) / 5)
    assert r2["p_value"] == pytest.approx(_by_hand([x + 0.002 for x in d2])[2], rel=1e-6) and r2["significant"]
    # a margin larger than the gap the other way round fails: 0.003 above with margin 0.002
    s3 = _runs({"cel_lite": dict(enumerate(np.array(FULL5) + [0.003, 0.0032, 0.0028, 0.0031, 0.0029])),
                "full": dict(enumerate(FULL5))})
    r3 = check_claims(cell_stats(s3, spec2), spec2, s3).iloc[0]
    assert not r3["holds"] and r3["p_value"] > 0.5
    with pytest.raises(ValueError, match="margin"):
        Claim("cel_lite", "full", margin=-0.001)


def test_margin_follows_the_tables_scale():
    full = [0.7000, 0.7100, 0.7050, 0.7200, 0.6950]
    lite = [0.6996, 0.7093, 0.7048, 0.7192, 0.6947]
    s = _runs({"cel_lite": dict(enumerate(lite)), "full": dict(enumerate(full))}, metric="test_auc",
              task="conversion")
    plain = _spec((Claim("cel_lite", "full", margin=0.001),), metric="test_auc")
    pct = _spec((Claim("cel_lite", "full", margin=0.001),), metric="test_auc", scale={"test_auc": 100.0})
    a = check_claims(cell_stats(s, plain), plain, s).iloc[0]
    b = check_claims(cell_stats(s, pct), pct, s).iloc[0]
    assert b["margin"] == pytest.approx(0.1) and b["mean_diff"] == pytest.approx(100 * a["mean_diff"])
    assert b["t"] == pytest.approx(a["t"]) and b["p_value"] == pytest.approx(a["p_value"])


def test_table7_claims_are_superiority_claims():
    assert all(c.margin is None for c in TABLES["table7"].claims)
    assert TABLES["table7"].alpha == 0.05


def test_footnote_and_printed_lines_report_the_tests(tmp_path):
    s = _runs({"cel": dict(enumerate(CEL5)), "jnkm": dict(enumerate(FULL5)), "full": {0: 0.9, 1: 0.93},
               "etree": {4: 0.85}}, compression="100")
    s["dataset"] = "ml-100k"
    tex = render(s, TABLES["table7"])
    claims = check_claims(cell_stats(s, TABLES["table7"]), TABLES["table7"], s).set_index("claim")
    assert set(claims.index) == {"jnkm < full", "etree < full", "cel < full", "cel < etree", "cel < jnkm"}
    # cel < jnkm: 5 folds, p ~ 3e-4; cel < full: d = 0.10, 0.11 -> t = 21, p = 0.0151 (1 df);
    # jnkm < full: d = 0.07, 0.09 -> t = 8, p = 0.0396; etree shares no fold with full, one with cel
    assert claims.loc["cel < full", "p_value"] == pytest.approx(sps.t.sf(21, 1))
    assert claims.loc["jnkm < full", "p_value"] == pytest.approx(sps.t.sf(8, 1))
    # Holm over the three tested rows: 3 p_min, 2 x 0.0151 = 0.0303, max(0.0396, 0.0303) -> all three
    assert claims.loc["cel < full", "p_holm"] == pytest.approx(2 * sps.t.sf(21, 1))
    assert claims.loc["jnkm < full", "p_holm"] == pytest.approx(sps.t.sf(8, 1))
    assert claims["significant"].sum() == 3
    assert list(claims.loc[["etree < full", "cel < etree"], "n_pairs"]) == [0, 1]
    assert ("{\\footnotesize Paired one-sided $t$-tests over folds (seeds averaged within a fold), "
            "Holm-corrected: 3 of 3 orderings significant at 0.05. 2 more without a test (fewer than 2 "
            "paired folds, or the same difference in every fold).}") in tex
    k, m = 3, 3
    assert tex.index("\\end{tabular}}") < tex.index("Holm-corrected") < tex.index("\\end{table*}")
    lines = write_table(s, "table7", tmp_path / "table7.tex")
    row = claims.loc["cel < jnkm"]
    line = next(x for x in lines if "cel < jnkm" in x)
    assert f"n=5 p={row['p_value']:.3g} p_holm={row['p_holm']:.3g}" in line
    assert f"{k} of {m} tested orderings significant" in lines[-1] and lines[-1].endswith("(5/5 claims hold)")
    assert "n=1 p=n/a p_holm=n/a" in next(x for x in lines if "cel < etree" in x)
    csv = pd.read_csv(tmp_path / "table7_claims.csv")
    assert list(csv.columns[-7:]) == ["margin", "n_pairs", "mean_diff", "t", "p_value", "p_holm", "significant"]
    assert csv.set_index("claim").loc["cel < jnkm", "p_holm"] == pytest.approx(row["p_holm"])
    # no claim rows: no footnote
    assert "Holm)" not in render(_runs({"cel": {0: 0.8}}, compression="100"), TABLES["table7"])


def test_table7_lists_its_deviations_with_evidence():
    """Every deviation the spec names is printed under the table, with its evidence, once."""
    from cel.paper import deviations

    tex = render(_runs({"cel": {0: 0.8}}, compression="100"), TABLES["table7"])
    items = [line for line in tex.splitlines() if line.startswith("\\item ")]
    assert len(items) == len(TABLES["table7"].deviations) >= 5
    assert tex.index("\\end{table*}") < tex.index("Deviations from the paper")   # after the float: one page
    for dev_id, line in zip(TABLES["table7"].deviations, items):
        d = deviations()[dev_id]
        assert line.startswith(f"\\item {latex_escape(d['what'])}:") and latex_escape(d["evidence"]) in line
    with pytest.raises(ValueError, match="unknown deviation"):
        dataclasses.replace(TABLES["table7"], deviations=("no_such_thing",))
