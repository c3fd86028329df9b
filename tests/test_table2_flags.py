"""Table 2's LTC / LMC / SIT columns: static per-row flags a TableSpec reads from paper_results.yaml
(``row_flags``), rendered before the measured columns as check marks / crosses ("--" where the
paper has none) and written to the cells CSV as true / false. Every other table renders exactly
as without the feature: the flag columns only add columns."""
import csv
import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import cel
from cel.report import COLUMNS
from cel.tables import (METHOD_LABELS, TABLES, Axis, Claim, PaperRef, RowFlags, TableSpec, cell_stats, render,
                        write_table)
from test_tables import grid

YES, NO, NONE = "$\\checkmark$", "$\\times$", "--"
FLAGS = ("ltc", "lmc", "sit")
#: the paper's Table 2, transcribed by hand (LTC, LMC, SIT; ✓ = True)
PAPER_TABLE2 = {
    "full": (True, False, True), "etree": (False, False, False), "jnkm": (False, False, False),
    "modulo": (True, True, True), "bh": (True, True, True), "ae": (True, True, True),
    "hashgnn": (False, False, False), "prehash_k4": (True, True, False), "prehash_kmq": (False, True, False),
    "cel": (False, True, True), "cel_lite": (True, True, True),
}
#: the columns cell_stats adds after a cell's axis values, for a table without flags
STAT_COLUMNS = ["mean", "std", "n", "runs", "paper", "paper_source", "delta", "stored_percent", "higher_is_better"]


def yaml_properties() -> dict:
    """table2.properties, read straight from the package's YAML (not through cel.paper)."""
    path = Path(cel.__file__).parent / "resources" / "paper_results.yaml"
    return yaml.safe_load(path.read_text())["table2"]["properties"]


def table2_summary(methods, compressions=("100", "5", "1", "0.5")) -> pd.DataFrame:
    """DIN on ML-100k, every method at every compression, 3 folds, one seed."""
    rows = [dict(task="regression", dataset="ml-100k", variant="original", model="din", method=m, compression=c,
                 fold=f, seed=0, metric="test_mse", value=0.8 + 0.01 * i + 0.001 * f)
            for i, m in enumerate(methods) for c in compressions for f in range(3)]
    return pd.DataFrame(rows, columns=COLUMNS)


def row_cells(tex: str, label: str) -> list[str]:
    line = next(line for line in tex.splitlines() if line.startswith(label + " & "))
    return line.removesuffix(" \\\\").split(" & ")


def test_paper_results_flags_are_the_papers_table2():
    props = yaml_properties()
    assert set(props) == set(PAPER_TABLE2)
    for method, flags in PAPER_TABLE2.items():
        assert tuple(props[method][f] for f in FLAGS) == flags, method
        assert all(isinstance(props[method][f], bool) for f in FLAGS), method


def test_table2_latex_shows_each_rows_flags_from_paper_results():
    spec = TABLES["table2"]
    assert spec.row_flags is not None and spec.row_flags.flags == FLAGS
    props = yaml_properties()
    methods = list(props) + ["cerp"]                 # CERP: a method the paper's Table 2 has no row for
    tex = render(table2_summary(methods), spec)
    for m in props:
        cells = row_cells(tex, METHOD_LABELS[m])
        assert cells[1:4] == [YES if props[m][f] else NO for f in FLAGS], m
        assert "$\\pm$" in cells[4] or cells[4] == "--"      # the measured columns follow
    assert row_cells(tex, "CEL")[1:4] == [NO, YES, YES]
    assert row_cells(tex, "CEL-Lite")[1:4] == [YES, YES, YES]
    assert row_cells(tex, "Vanilla full embedding")[1:4] == [YES, NO, YES]
    # a row the paper has no flags for shows "--" in each flag column
    assert row_cells(tex, "CERP")[1:4] == [NONE, NONE, NONE]
    # the header names the flags before the measured columns; groups above shift right by 3
    assert "\\begin{tabular}{lccccccc}" in tex                      # 1 label + 3 flags + 4 compressions
    assert "Compression ratio & LTC & LMC & SIT & 100\\% & 5\\% & 1\\% & 0.5\\% \\\\" in tex
    assert "Dataset &  &  &  & \\multicolumn{4}{c}{MovieLens-100k} \\\\" in tex
    assert "\\cmidrule(lr){5-8}" in tex and "\\cmidrule(lr){2-5}" not in tex
    assert "LTC" in spec.caption and "SIT" in spec.caption


def test_table2_without_runs_spans_the_flag_columns():
    tex = render(table2_summary([]), TABLES["table2"])
    assert "\\multicolumn{8}{c}{no runs yet} \\\\" in tex


def test_table2_cells_csv_has_flags_as_true_false(tmp_path):
    props = yaml_properties()
    write_table(table2_summary(["cel", "modulo", "cerp"]), "table2", tmp_path / "table2.tex")
    with open(tmp_path / "table2.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    assert header[header.index("metric") + 1:header.index("mean")] == list(FLAGS)
    assert {r["method"] for r in rows} == {"cel", "modulo", "cerp"}
    for r in rows:
        want = (["true" if props[r["method"]][f] else "false" for f in FLAGS] if r["method"] in props
                else ["", "", ""])
        assert [r[f] for f in FLAGS] == want, r
    back = pd.read_csv(tmp_path / "table2.csv", dtype={"compression": str}).set_index(["method", "compression"])
    assert back.loc[("cel", "5"), "lmc"] == True and back.loc[("cel", "5"), "ltc"] == False  # noqa: E712


def test_a_flag_the_paper_lacks_shows_a_dash():
    spec = dataclasses.replace(TABLES["table2"], row_flags=RowFlags(
        ("sit", "xyz"), PaperRef("table2", ("properties", "{method}")), labels={"xyz": "X\\&Y"}))
    tex = render(table2_summary(["cel", "prehash_kmq", "qr"]), spec)
    assert "Compression ratio & SIT & X\\&Y & 100\\%" in tex
    assert row_cells(tex, "CEL")[1:3] == [YES, NONE]
    assert row_cells(tex, "PreHash ($K=M_q$)")[1:3] == [NO, NONE]
    assert row_cells(tex, "QR")[1:3] == [NONE, NONE]
    assert spec.lookup_flags({"method": "nonexistent"}) == {"sit": None, "xyz": None}
    assert TABLES["table7"].lookup_flags({"method": "cel"}) == {}


def test_a_flag_that_is_not_a_boolean_is_an_error(monkeypatch):
    monkeypatch.setattr("cel.tablespec.paper_results",
                        lambda: {"table2": {"properties": {"cel": {"ltc": "yes", "lmc": True, "sit": True}}}})
    with pytest.raises(ValueError, match="'ltc' is 'yes'"):
        TABLES["table2"].lookup_flags({"method": "cel"})


def test_row_flags_declaration_is_checked():
    base = dict(name="t", caption="", rows="method", cols="compression", metric="test_mse")
    with pytest.raises(ValueError, match="per row"):         # a column axis in the path
        TableSpec(**base, row_flags=RowFlags(FLAGS, PaperRef("table2", ("properties", "{compression}"))))
    with pytest.raises(ValueError, match="clash"):
        TableSpec(**base, row_flags=RowFlags(("mean",), PaperRef("table2", ("properties", "{method}"))))
    with pytest.raises(ValueError, match="distinct"):
        RowFlags(("ltc", "ltc"), PaperRef("table2", ("properties", "{method}")))
    with pytest.raises(ValueError, match="unknown flags"):
        RowFlags(FLAGS, PaperRef("table2", ("properties", "{method}")), labels={"xyz": "X"})
    # a path placeholder fixed by a filter is per row too
    TableSpec(**base, filters={"dataset": "ml-1m"},
              row_flags=RowFlags(FLAGS, PaperRef("table2", ("properties", "{method}"), when={"dataset": "ml-1m"})))


# ---------------------------------------------------------------------------------------------
# every other table: unchanged
@pytest.fixture(scope="module")
def summary():
    """test_tables' synthetic grid, plus its ML-1m runs again as ML-100k (tables of ML-100k data)."""
    s = grid()
    both = pd.concat([s, s[s["dataset"] == "ml-1m"].assign(dataset="ml-100k")], ignore_index=True)
    return both.loc[~both.drop(columns="value").astype(str).duplicated()].reset_index(drop=True)


def strip_flags(tex: str, spec: TableSpec, nflag: int) -> str:
    """``tex`` with ``nflag`` flag columns after the row labels taken out again."""
    nstub, out, lines = len(spec.rows), [], tex.splitlines()
    body = False
    for i, line in enumerate(lines):
        if line.startswith("\\begin{tabular}{"):
            cols = line[len("\\begin{tabular}{"):-1]
            assert cols[nstub:nstub + nflag] == "c" * nflag
            line = "\\begin{tabular}{" + cols[:nstub] + cols[nstub + nflag:] + "}"
        elif line == "\\toprule":
            body = True
        elif line == "\\bottomrule":
            body = False
        elif body and line.startswith("\\cmidrule"):
            line = re.sub(r"\{(\d+)-(\d+)\}", lambda m: f"{{{int(m[1]) - nflag}-{int(m[2]) - nflag}}}", line)
        elif body and "no runs yet" in line:
            line = re.sub(r"\\multicolumn\{(\d+)\}", lambda m: f"\\multicolumn{{{int(m[1]) - nflag}}}", line)
        elif body and lines[i + 1] == "\\midrule" and any(a.title for a in spec.rows):   # the row titles
            assert line.endswith(" &" * nflag + " \\\\")
            line = line[:-len(" &" * nflag + " \\\\")] + " \\\\"
        elif body and " & " in line:
            parts = line.split(" & ")
            assert all(p in (YES, NO, NONE, "") or p.isupper() for p in parts[nstub:nstub + nflag]), line
            line = " & ".join(parts[:nstub] + parts[nstub + nflag:])
        out.append(line)
    return "\n".join(out) + ("\n" if tex.endswith("\n") else "")


def with_flags(spec: TableSpec) -> TableSpec:
    axis = "method" if "method" in [a.name for a in spec.rows] else spec.rows[0].name
    return dataclasses.replace(spec, row_flags=RowFlags(FLAGS, PaperRef("table2", ("properties", f"{{{axis}}}"))))


@pytest.mark.parametrize("name", list(TABLES))
def test_flags_only_add_columns(summary, name):
    """With and without row flags, a table renders the same once the flag columns are taken out; the
    cells CSV gains the flag columns only. Every table but Table 2 declares none."""
    spec = TABLES[name]
    if name == "table2":
        flagged, plain = spec, dataclasses.replace(spec, row_flags=None)
    else:
        assert spec.row_flags is None
        flagged, plain = with_flags(spec), spec
    tex, tex_flagged = render(summary, plain), render(summary, flagged)
    assert "\\checkmark" not in tex and "LTC & LMC & SIT" not in tex
    assert "LTC & LMC & SIT" in tex_flagged
    assert strip_flags(tex_flagged, spec, len(FLAGS)) == tex
    assert tex.count("\\\\\n") == tex_flagged.count("\\\\\n")
    # the empty table too
    empty = summary.iloc[:0]
    assert strip_flags(render(empty, flagged), spec, len(FLAGS)) == render(empty, plain)
    # the cells: the same, plus the flag columns after the axis values
    cells, cells_flagged = cell_stats(summary, plain), cell_stats(summary, flagged)
    keys = [c for c in cells.columns if c not in STAT_COLUMNS]
    assert list(cells.columns) == keys + STAT_COLUMNS
    assert list(cells_flagged.columns) == keys + list(FLAGS) + STAT_COLUMNS
    pd.testing.assert_frame_equal(cells_flagged.drop(columns=list(FLAGS)), cells)



# A table without flags renders byte for byte as before the flags existed: GOLDEN is the output of
# the renderer before this feature (commit 11a1577), on a table with two column levels, a row
# title, paper values and claims.
GOLDEN_SPEC = TableSpec(
    name="golden", caption="Golden.", rows=Axis("method", values=("full", "cel"), title="Method"),
    cols=(Axis("model", values=("nmf", "din")), Axis("compression", values=("100", "5"))),
    metric="test_mse", filters={"task": "regression", "dataset": "ml-100k"},
    paper=PaperRef("table7", ("{dataset}", "{method}", "{compression}")),
    claims=(Claim("cel", "full", ("100",)),))
GOLDEN = (
    '% Generated by `cel table` from results/summary.csv -- do not edit by hand.\n'
    '\\begin{table*}[t]\n'
    '\\centering\n'
    '\\small\n'
    '\\caption{Golden.}\n'
    '\\label{tab:golden}\n'
    '\\resizebox*{!}{\\ifdim\\totalheight>0.85\\textheight 0.85\\textheight\\else\\totalheight\\fi}{%\n'
    '\\resizebox{\\ifdim\\width>\\textwidth\\textwidth\\else\\width\\fi}{!}{%\n'
    '\\begin{tabular}{lcccc}\n'
    '\\toprule\n'
    'Feature interaction model & \\multicolumn{2}{c}{NMF} & \\multicolumn{2}{c}{DIN} \\\\\n'
    '\\cmidrule(lr){2-3} \\cmidrule(lr){4-5}\n'
    'Compression ratio & 100\\% & 5\\% & 100\\% & 5\\% \\\\\n'
    'Method & & & & \\\\\n'
    '\\midrule\n'
    'Vanilla full embedding & \\shortstack{0.9400 $\\pm$ 0.0100$^{n=3}$ \\\\ \\scriptsize[0.9283; $+0.0117$]} & -- & \\shortstack{0.9400 $\\pm$ 0.0100$^{n=3}$ \\\\ \\scriptsize[0.9283; $+0.0117$]} & -- \\\\\n'
    'CEL & \\shortstack{0.9200 $\\pm$ 0.0100$^{n=3}$ \\\\ \\scriptsize[0.8602; $+0.0598$]} & \\shortstack{0.9100 $\\pm$ 0.0100$^{n=3}$ \\\\ \\scriptsize[0.8689; $+0.0411$]} & \\shortstack{0.9200 $\\pm$ 0.0100$^{n=3}$ \\\\ \\scriptsize[0.8602; $+0.0598$]} & \\shortstack{0.9100 $\\pm$ 0.0100$^{n=3}$ \\\\ \\scriptsize[0.8689; $+0.0411$]} \\\\\n'
    '\\bottomrule\n'
    '\\end{tabular}}}\n'
    '\\par\\smallskip\n'
    '{\\footnotesize Paired one-sided $t$-tests over folds (seeds averaged within a fold), Holm-corrected: 0 of 0 orderings significant at 0.05. 2 more without a test (fewer than 2 paired folds, or the same difference in every fold).}\n'
    '\\end{table*}\n'
)


def golden_summary() -> pd.DataFrame:
    rows = [dict(task="regression", dataset="ml-100k", variant="original", model=mo, method=m, compression=c,
                 fold=f, seed=0, metric="test_mse", value=v + 0.01 * f)
            for mo in ("nmf", "din") for m, c, v in (("full", "100", 0.93), ("cel", "100", 0.91), ("cel", "5", 0.90))
            for f in range(3)]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_a_table_without_flags_renders_as_before():
    assert render(golden_summary(), GOLDEN_SPEC) == GOLDEN


def test_the_same_table_with_flags():
    tex = render(golden_summary(), with_flags(GOLDEN_SPEC)).splitlines()
    want = GOLDEN.splitlines()
    changed = {i: (a, b) for i, (a, b) in enumerate(zip(want, tex)) if a != b}
    assert len(tex) == len(want) and sorted(changed) == [8, 10, 11, 12, 13, 15, 16]
    assert tex[8] == "\\begin{tabular}{lccccccc}"
    assert tex[10] == "Feature interaction model &  &  &  & \\multicolumn{2}{c}{NMF} & \\multicolumn{2}{c}{DIN} \\\\"
    assert tex[11] == "\\cmidrule(lr){5-6} \\cmidrule(lr){7-8}"
    assert tex[12] == "Compression ratio & LTC & LMC & SIT & 100\\% & 5\\% & 100\\% & 5\\% \\\\"
    assert tex[13] == "Method & & & & & & & \\\\"
    assert tex[15] == want[15].replace("Vanilla full embedding & ", f"Vanilla full embedding & {YES} & {NO} & {YES} & ")
    assert tex[16] == want[16].replace("CEL & ", f"CEL & {NO} & {YES} & {YES} & ", 1)
