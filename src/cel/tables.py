"""LaTeX tables (booktabs) from summary.csv: our mean ± std beside the paper's value and the delta.

A table is a declaration, a :class:`TableSpec` in ``TABLES``; no table has code of its own.

* Rows and columns are grid **axes**: any summary column (``task``, ``dataset``, ``variant``,
  ``model``, ``method``, ``compression``, ``fold``, ``seed``, ``metric``) or a parameter column
  ``param.<name>`` (method parameter: ``t1``, ``delta``, ``criterion``...) / ``train.<name>``
  (training setting, e.g. ``optimizer``). Rows may nest several axes (several label columns),
  columns one or more levels (e.g. dataset, then compression).
* ``filters`` select the runs (axis -> value or tuple of values; ``"method+compression":
  ("jnkm+100", "cel+2")`` selects combinations); ``metric`` names the metric shown unless
  ``metric`` is an axis (Table 3's AUC / logloss columns). Runs that no axis or filter separates
  (two runs for one cell, fold and seed) are an error naming the columns they differ in.
* ``aggregate``: runs in one cell are averaged over the leading axes (seeds, within a fold) and
  the last one (folds) gives mean, sample std and n.
* The better direction of every comparison comes from the metric's task
  (:func:`cel.train.tasks.higher_is_better`): lower MSE, higher AUC.
* ``paper`` maps a cell's axis values to a path in ``resources/paper_results.yaml``.
* ``row_flags`` (:class:`RowFlags`): static yes/no columns per row read from the same file (Table
  2's LTC / LMC / SIT), shown between the row labels and the measured columns as
  ``$\\checkmark$`` / ``$\\times$`` ("--" where the paper has none), and in the cells CSV as
  ``true`` / ``false`` (empty where none), one column per flag after the axis values.
* ``claims``: orderings the paper claims. Each is checked on our means and tested: seeds are
  averaged within a fold, the two cells are paired by fold (folds both have), and a paired
  one-sided t-test in the claimed direction gives p; Holm's step-down corrects the p-values of all
  claim rows of the table (READINGS, "Protocol and statistics"). A claim with a ``margin`` is a
  non-inferiority claim ("A >= B"): the null is "A is worse than B by more than the margin".

:func:`write_table` writes the .tex (with a footnote counting the significant orderings), the
cells .csv (mean, std, n, paper, delta) and the ``_claims.csv`` (orderings, our means, the test).
"""
from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from cel.report import canon
from cel.tablespec import (CORE_AXES, CORE_DEFAULTS, DEFAULT_TITLES, METHOD_LABELS, PARAM_PREFIXES,  # noqa: F401
                           Axis, Claim, PaperRef, RowFlags, TableSpec, check_axis)
from cel.tablespecs import TABLES, TABLE7_METHODS  # noqa: F401  (the registry, re-exported)

# A table shrinks to fit the page, never grows: first to the text width, then (a long table such as
# Table 7's) to 85% of the text height; a narrow table keeps its natural size (graphicx's \width and
# \totalheight are the box's natural size), so a 7-column table is not blown up taller than a page.
SHRINK_TO_FIT = ("\\resizebox*{!}{\\ifdim\\totalheight>0.85\\textheight 0.85\\textheight\\else\\totalheight\\fi}{%\n"
                 "\\resizebox{\\ifdim\\width>\\textwidth\\textwidth\\else\\width\\fi}{!}{%")
SHRINK_END = "}}"


# -- which runs a table needs --------------------------------------------------------------
RUN_AXES = ("task", "dataset", "variant", "model", "method", "compression", "fold", "seed")


def table_runs(spec: TableSpec, runs) -> list:
    """The runs (RunKeys) a table selects through its filters on run coordinates; each table's
    target depends on these only. Parameter filters (``param.*``) are applied when rendering."""
    out = []
    for r in runs:
        coords = {a: canon(getattr(r, a)) for a in RUN_AXES}
        ok = True
        for k, vals in spec.filters.items():
            parts = k.split("+")
            if not all(p in RUN_AXES for p in parts):
                continue
            if "+".join(coords[p] for p in parts) not in vals:
                ok = False
                break
        if ok:
            out.append(r)
    return out


# -- aggregation -------------------------------------------------------------------------------
def higher_is_better(metric: str) -> bool | None:
    """The metric's direction from its task; None for a metric without one (sizes, timings)."""
    from cel.train.tasks import higher_is_better as hib

    try:
        return hib(metric)
    except KeyError:
        return None


def _prepare(summary: pd.DataFrame, spec: TableSpec, metrics: tuple[str, ...]) -> pd.DataFrame:
    """The runs of ``spec`` (filters applied) for ``metrics``, axis columns as canonical strings."""
    df = summary.copy()
    for c, default in CORE_DEFAULTS.items():
        df[c] = df[c].astype(object).where(df[c].notna(), default) if c in df.columns else default
    needed = set(spec.axis_names) | {p for k in spec.filters for p in k.split("+")} | set(spec.aggregate) | {"metric"}
    for ref in (spec.paper, *spec.fallback):
        if ref is not None:
            needed |= ref.placeholders()
    for name in sorted(needed):
        if name not in df.columns:
            if name in CORE_AXES:
                raise ValueError(f"table {spec.name}: the summary has no column {name!r} "
                                 f"(columns: {', '.join(map(str, df.columns))})")
            df[name] = None        # a parameter no run has: matches nothing
        df[name] = [canon(v) for v in df[name]]
    for k, vals in spec.filters.items():
        if k == "metric":
            continue
        parts = k.split("+")
        key = df[k] if len(parts) == 1 else pd.Series(["+".join(map(str, t)) for t in zip(*(df[p] for p in parts))],
                                                      index=df.index, dtype=object)
        df = df[key.isin(vals)]
    df = df[df["metric"].isin(metrics)]
    # a run without a value on a row/column axis (a parameter its method lacks) has no place
    df = df[df[[a for a in spec.axis_names if a != "metric"]].notna().all(axis=1)].copy()
    if spec.scale:
        df["value"] = df["value"] * df["metric"].map(lambda m: spec.scale.get(m, 1.0)).astype(float)
    return df


def _shown_metrics(spec: TableSpec) -> tuple[str, ...]:
    if "metric" in spec.axis_names:
        vals = spec.axis("metric").values
        return tuple(v for v in vals if "metric" not in spec.filters or v in spec.filters["metric"])
    return (spec.metric,) if spec.metric else spec.filters["metric"]


def _pair_axis(spec: TableSpec, keys: list[str]) -> str | None:
    """The axis a cell's values are spread over (and claims paired by): the last aggregate axis
    that is not a row/column axis (``fold``); None where every aggregate axis is one."""
    agg = [a for a in spec.aggregate if a not in keys]
    return agg[-1] if agg else None


def _per_unit(df: pd.DataFrame, spec: TableSpec, keys: list[str]) -> pd.DataFrame:
    """Per cell (``keys``) and value of the last aggregate axis (fold): the value averaged over the
    leading aggregate axes (seeds within the fold), and the number of runs averaged."""
    agg = [a for a in spec.aggregate if a not in keys]
    cols = keys + agg
    if df.empty:
        return pd.DataFrame(columns=keys + agg[-1:] + ["value", "runs"])
    dup = df.groupby(cols, dropna=False).size()
    if (dup > 1).any():
        where = dict(zip(cols, dup[dup > 1].index[0]))
        sel = np.logical_and.reduce([df[c].eq(v) for c, v in where.items()])
        clash = df[sel]
        differ = [c for c in clash.columns if c not in ("value",) and clash[c].nunique(dropna=False) > 1]
        raise ValueError(f"table {spec.name}: {int(dup.max())} runs in one cell ({where}) differ in "
                         f"{differ or 'nothing'}: add a filter or an axis")
    cur = df[cols + ["value"]].copy()
    cur["runs"] = 1
    for i in range(len(agg) - 1):            # average away the leading aggregate axes
        by = keys + agg[i + 1:]
        cur = cur.groupby(by, dropna=False).agg(value=("value", "mean"), runs=("runs", "sum")).reset_index()
    return cur


def _aggregate(df: pd.DataFrame, spec: TableSpec, keys: list[str]) -> pd.DataFrame:
    """Per cell (``keys``): mean, std (ddof 1; 0 for one), n over the last aggregate axis, after
    averaging the leading ones within it; also the number of runs."""
    if df.empty:
        return pd.DataFrame(columns=keys + ["mean", "std", "n", "runs"])
    cur = _per_unit(df, spec, keys)
    g = cur.groupby(keys, dropna=False)
    out = g.agg(mean=("value", "mean"), std=("value", "std"), n=("value", "size"), runs=("runs", "sum")).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def _cell_keys(spec: TableSpec) -> list[str]:
    keys = spec.axis_names
    return keys if "metric" in keys else keys + ["metric"]


def cell_stats(summary: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """One row per cell with runs: its axis values, mean, std, n (over the last aggregate axis),
    runs, the paper's value, ours - paper, the stored size (if declared) and the direction."""
    keys = _cell_keys(spec)
    df = _prepare(summary, spec, _shown_metrics(spec))
    out = _aggregate(df, spec, keys)
    coords = [dict(zip(keys, t)) for t in out[keys].itertuples(index=False, name=None)]
    refs = [spec.lookup_paper_ref(c) for c in coords]
    out["paper"] = [v for v, _ in refs]
    out["paper"] = out["paper"].astype(float)
    out["paper_source"] = [src for _, src in refs]
    # a published value for another dataset is shown beside ours, never subtracted from it
    out["delta"] = (out["mean"].astype(float) - out["paper"]).where(out["paper_source"] == "")
    stored = _stored(summary, spec)
    out["stored_percent"] = [stored.get(_row_key(c, spec)) for c in coords]
    out["higher_is_better"] = [higher_is_better(m) for m in out["metric"]]
    if spec.row_flags is not None:               # after the axis values, before mean
        rnames = [a.name for a in spec.rows]
        flags = [spec.lookup_flags({a: c[a] for a in rnames}) for c in coords]
        for i, f in enumerate(spec.row_flags.flags):
            out.insert(len(keys) + i, f, pd.Series([fl[f] for fl in flags], index=out.index, dtype=object))
    return out


def fold_values(summary: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """One row per cell and fold (the last aggregate axis): the cell's axis values, the fold, the
    value averaged over the seeds run in that fold (scaled as shown) and the number of runs. The
    values the claims' paired tests use; their mean over folds is the cell's ``mean``."""
    keys = _cell_keys(spec)
    return _per_unit(_prepare(summary, spec, _shown_metrics(spec)), spec, keys)


def _row_key(coords: Mapping[str, str], spec: TableSpec) -> tuple:
    return tuple(coords.get(a) for a in spec.axis_names if a != "metric")


def _stored(summary: pd.DataFrame, spec: TableSpec) -> dict[tuple, float]:
    """Cell (axis values but the metric) -> mean stored size (% of a full table) over its runs."""
    if not spec.size_metric:
        return {}
    keys = [a for a in spec.axis_names if a != "metric"]
    df = _prepare(summary, spec, (spec.size_metric,))
    if df.empty:
        return {}
    return {(k if isinstance(k, tuple) else (k,)): float(v)
            for k, v in df.groupby(keys, dropna=False)["value"].mean().items()}


def stored_note(stored: float | None, nominal: str | None, tolerance: float) -> str | None:
    """'stores X%' where the size really stored differs from the nominal ratio, else None."""
    if stored is None or pd.isna(stored) or nominal is None:
        return None
    try:
        nom = float(nominal)
    except ValueError:
        return None
    if abs(stored - nom) <= tolerance * nom:
        return None
    return f"stores {stored:.3g}\\%"


# -- rendering ---------------------------------------------------------------------------------
def _cell(stat: Mapping | None, paper: float | None, digits: int, note: str | None = None, source: str = "") -> str:
    extra = f" \\\\ \\scriptsize {note}" if note else ""
    label = f"{latex_escape(source)}: " if source else ""
    if stat is None:
        return "--" if paper is None else f"\\shortstack{{-- \\\\ \\scriptsize[{label}{paper:.{digits}f}]}}"
    mean, std, n = float(stat["mean"]), float(stat["std"]), int(stat["n"])
    runs = int(stat.get("runs") or n)
    count = f"{n}\\times{runs // n}" if runs > n and n else f"{n}"      # folds x seeds averaged within
    ours = f"{mean:.{digits}f} $\\pm$ {std:.{digits}f}$^{{n={count}}}$"
    if paper is None:
        return f"\\shortstack{{{ours} \\\\ \\scriptsize[--]{extra}}}"
    if source:
        return f"\\shortstack{{{ours} \\\\ \\scriptsize[{label}{paper:.{digits}f}]{extra}}}"
    return f"\\shortstack{{{ours} \\\\ \\scriptsize[{paper:.{digits}f}; ${mean - paper:+.{digits}f}$]{extra}}}"


def _metric_of(coords: Mapping[str, str], spec: TableSpec) -> str:
    return coords.get("metric") or spec.metric or spec.filters["metric"][0]


def _row_col_keys(stats: pd.DataFrame, spec: TableSpec, by_cell: dict, coords_of) -> tuple[list, list]:
    """Rows with runs, in declared order; columns where some row has runs, or the paper a value for
    a shown or declared row (else the declared frame)."""
    keys, rnames = _cell_keys(spec), [a.name for a in spec.rows]
    present_rows = {tuple(r[a] for a in rnames) for r in by_cell.values()}
    row_keys = sorted(present_rows, key=lambda t: tuple(spec.rows[i].order({x[i] for x in present_rows}).index(v)
                                                       for i, v in enumerate(t)))
    levels = [a.order(set(stats[a.name])) for a in spec.cols]
    paper_rows = set(row_keys) | set(product(*[a.values for a in spec.rows]))
    # a column with only the paper's values is shown for datasets that have runs (a table of your
    # own data shows no MovieLens columns); without any run the declared frame is shown
    ran = set(stats["dataset"]) if "dataset" in stats.columns and len(stats) else None

    def paper_only(ck) -> bool:
        shown = [rk for rk in paper_rows if spec.lookup_paper(coords_of(rk, ck)) is not None]
        return bool(shown) and (ran is None or coords_of(shown[0], ck).get("dataset") in ran | {None})

    col_keys = [ck for ck in product(*levels)
                if any(tuple(coords_of(rk, ck)[k] for k in keys) in by_cell for rk in present_rows) or paper_only(ck)]
    return row_keys, col_keys or list(product(*[a.values for a in spec.cols]))


def _flag_cell(value: bool | None) -> str:
    return "--" if value is None else ("$\\checkmark$" if value else "$\\times$")


def _header_lines(spec: TableSpec, col_keys: list) -> list[str]:
    """The column header: one line per column level (multicolumn groups above the last level); the
    row flags' labels on the last line, blank above."""
    nstub, ncol, lines = len(spec.rows), len(col_keys), []
    flags = spec.row_flags.flags if spec.row_flags is not None else ()
    nflag = len(flags)
    for lvl, ax in enumerate(spec.cols):
        title = ax.title if ax.title is not None else DEFAULT_TITLES.get(ax.name, ax.name)
        stub = " & ".join([""] * (nstub - 1) + [title])
        if lvl == len(spec.cols) - 1:
            lines.append(" & ".join([stub] + [spec.row_flags.label(f) for f in flags]
                                    + [ax.label(ck[lvl]) for ck in col_keys]) + " \\\\")
            continue
        groups, start = [], 0                # runs of columns sharing the prefix up to this level
        for i in range(1, ncol + 1):
            if i == ncol or col_keys[i][:lvl + 1] != col_keys[start][:lvl + 1]:
                groups.append((start, i))
                start = i
        spans = [f"\\multicolumn{{{b - a}}}{{c}}{{{ax.label(col_keys[a][lvl])}}}" for a, b in groups]
        lines.append(" & ".join([stub] + [""] * nflag + spans) + " \\\\")
        first = nstub + nflag                # columns before the measured ones
        lines.append(" ".join(f"\\cmidrule(lr){{{first + 1 + a}-{first + b}}}" for a, b in groups))
    if any(a.title for a in spec.rows):
        lines.append(" & ".join([a.title or "" for a in spec.rows] + [""] * (nflag + ncol)).replace("  ", " ").rstrip()
                     + " \\\\")
    return lines


def render(summary: pd.DataFrame, spec: TableSpec, stats: pd.DataFrame | None = None,
           claims: pd.DataFrame | None = None) -> str:
    """The LaTeX table; ``stats`` (:func:`cell_stats`) and ``claims`` (:func:`check_claims`) are
    computed here unless the caller already has them."""
    keys = _cell_keys(spec)
    stats = cell_stats(summary, spec) if stats is None else stats
    by_cell = {t: r for t, r in zip(stats[keys].itertuples(index=False, name=None), stats.to_dict("records"))}
    rnames, cnames = [a.name for a in spec.rows], [a.name for a in spec.cols]

    def coords_of(rk, ck):
        c = dict(zip(rnames, rk)) | dict(zip(cnames, ck))
        c.setdefault("metric", _metric_of(c, spec))
        return c

    row_keys, col_keys = _row_col_keys(stats, spec, by_cell, coords_of)
    nstub, ncol, stored = len(spec.rows), len(col_keys), _stored(summary, spec)
    nflag = len(spec.row_flags.flags) if spec.row_flags is not None else 0
    lines = ["% Generated by `cel table` from results/summary.csv -- do not edit by hand.",
             "\\begin{table*}[t]", "\\centering", "\\small",
             f"\\caption{{{spec.caption}}}", f"\\label{{tab:{spec.name}}}", SHRINK_TO_FIT,
             f"\\begin{{tabular}}{{{'l' * nstub}{'c' * (nflag + ncol)}}}", "\\toprule", *_header_lines(spec, col_keys),
             "\\midrule"]
    for rk in row_keys:
        cells = [_flag_cell(v) for v in spec.lookup_flags(dict(zip(rnames, rk))).values()]
        for ck in col_keys:
            c = coords_of(rk, ck)
            stat = by_cell.get(tuple(c[k] for k in keys))
            nominal = c.get("compression") or spec.fixed().get("compression")
            note = stored_note(stored.get(_row_key(c, spec)), nominal, spec.size_tolerance) if stat else None
            paper, source = spec.lookup_paper_ref(c)
            cells.append(_cell(stat, paper, spec.digits, note, source))
        lines.append(" & ".join(a.label(v) for a, v in zip(spec.rows, rk)) + " & " + " & ".join(cells) + " \\\\")
    if not row_keys:
        lines.append(f"\\multicolumn{{{ncol + nflag + nstub}}}{{c}}{{no runs yet}} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}" + SHRINK_END]
    if claims is None and spec.claims:
        claims = check_claims(stats, spec, summary)
    if claims is not None and len(claims):
        lines += ["\\par\\smallskip", f"{{\\footnotesize {significance_note(claims, spec)}}}"]
    # the deviations follow the float (inside it, Table 7's list made it taller than a page)
    lines += ["\\end{table*}", *deviation_lines(spec), ""]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("$", "\\$"), ("#", "\\#"),
                 ("_", "\\_"), ("{", "\\{"), ("}", "\\}"), ("~", "\\textasciitilde{}"), ("^", "\\^{}")):
        text = text.replace(a, b)
    return text


def deviation_lines(spec: TableSpec) -> list[str]:
    """The table's deviations from the paper, each with its evidence, as a footnote list."""
    from cel.paper import deviations

    if not spec.deviations:
        return []
    lines = ["\\par\\smallskip", "{\\footnotesize Deviations from the paper (evidence in brackets):",
             "\\begin{itemize}\\setlength{\\itemsep}{0pt}"]
    for d in (deviations()[i] for i in spec.deviations):
        lines.append(f"\\item {latex_escape(d['what'])}: paper: {latex_escape(d['paper'])}; ours: "
                     f"{latex_escape(d['ours'])} [{latex_escape(d['evidence'])}]")
    return lines + ["\\end{itemize}}"]


# -- claims ------------------------------------------------------------------------------------
CLAIM_COLUMNS = ["claim", "where", "metric", "dataset", "compression", "better", "worse",
                 "ours_better", "ours_worse", "paper_better", "paper_worse", "holds", "paper_holds",
                 "margin", "n_pairs", "mean_diff", "t", "p_value", "p_holm", "significant"]


def _claim_columns(spec: TableSpec) -> list[str]:
    """CLAIM_COLUMNS with a column for every other axis of the table after ``compression`` (but one
    that every claim compares along, e.g. ``method``: its values are in ``better`` / ``worse``)."""
    compared = {c.axis or spec.rows[0].name for c in spec.claims}
    always = compared if len(compared) == 1 else set()
    extra = [a for a in spec.axis_names if a not in CLAIM_COLUMNS and a not in always]
    i = CLAIM_COLUMNS.index("better")
    return CLAIM_COLUMNS[:i] + extra + CLAIM_COLUMNS[i:]


def _wins(a: float, b: float, higher: bool, margin: float | None = None) -> bool:
    """``a`` beats ``b`` in the metric's direction; with a margin: ``a`` is not worse by more than it."""
    d = (a - b) if higher else (b - a)
    return bool(d > -margin) if margin is not None else bool(d > 0)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` (NaN: no test, left NaN and not counted in m):
    the i-th smallest of m becomes max over j <= i of (m - j + 1) p_(j), capped at 1."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adj, 1.0)
    return out


def paired_test(better, worse, higher: bool, margin: float | None = None) -> dict:
    """One-sided paired t-test that ``better`` beats ``worse`` (paired arrays, one value per fold).

    Differences are signed so that positive = the claim holds: d = better - worse where higher is
    better, worse - better where lower is; ``mean_diff`` is their mean and ``t`` has the same sign.
    Superiority (``margin`` None): H0 mean d <= 0 against H1 mean d > 0. Non-inferiority: H0
    mean d <= -margin against H1 mean d + margin > 0. By ``scipy.stats.ttest_rel`` with
    ``alternative="greater"`` (higher is better) or ``"less"`` (lower), ``better`` shifted by the
    margin in the good direction. ``t`` and ``p_value`` are NaN for fewer than 2 pairs or
    differences all equal (up to rounding: no variance to test against)."""
    a, b = np.asarray(better, dtype=float), np.asarray(worse, dtype=float)
    sign = 1.0 if higher else -1.0
    d = sign * (a - b)
    out = {"n_pairs": int(len(d)), "mean_diff": float(d.mean()) if len(d) else float("nan"),
           "t": float("nan"), "p_value": float("nan")}
    if len(d) < 2:
        return out
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    if float(np.ptp(d)) <= 1e-12 * scale:
        return out
    shifted = a + sign * (margin or 0.0)
    res = sps.ttest_rel(shifted, b, alternative="greater" if higher else "less")
    out["t"], out["p_value"] = sign * float(res.statistic), float(res.pvalue)
    return out


def check_claims(stats: pd.DataFrame, spec: TableSpec, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each claimed ordering wherever both sides have runs: our means, whether it holds for us
    (``holds``) and whether the paper's own numbers show it (``paper_holds``; None without them).
    ``where`` names the other axes' values, which also have columns (dataset and compression always;
    "" where not defined). For a claim with a margin, "holds" means within the margin.

    The test (needs ``summary``, the runs ``stats`` was computed from; without it ``n_pairs`` is 0
    and the test columns NaN): seeds are averaged within a fold, the folds both cells have are
    paired (``n_pairs``), and :func:`paired_test` gives ``mean_diff`` (mean over the paired folds of
    better - worse, signed so that positive = the claimed direction holds: better - worse for a
    higher-is-better metric, worse - better for a lower-is-better one; shown units, i.e. scaled),
    ``t`` (same sign) and the one-sided ``p_value``. ``margin`` is the claim's margin in shown units
    (NaN: superiority). ``p_holm``: Holm over all claim rows of the table with a p-value;
    ``significant``: ``p_holm < spec.alpha`` (False without a test)."""
    keys, cols = _cell_keys(spec), _claim_columns(spec)
    blank = {c: "" for c in cols if c not in CLAIM_COLUMNS}
    per_fold = _fold_index(summary, spec, keys) if summary is not None else {}
    recs = stats.to_dict("records")
    rows = [{**blank, **_claim_row(claim, coords, a, b, per_fold, spec)}
            for claim in spec.claims for coords, a, b in _claim_pairs(claim, recs, spec)]
    out = pd.DataFrame(rows, columns=cols)
    out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float)) if len(out) else []
    out["significant"] = (out["p_holm"] < spec.alpha).astype(bool) if len(out) else []
    return out


def _fold_index(summary: pd.DataFrame, spec: TableSpec, keys: list[str]) -> dict[tuple, dict]:
    """cell key -> {pairing unit (fold): value}, seeds averaged within the unit first."""
    out: dict[tuple, dict] = {}
    unit = _pair_axis(spec, keys)
    for rec in fold_values(summary, spec).to_dict("records"):
        if pd.notna(rec["value"]):
            out.setdefault(tuple(rec[k] for k in keys), {})[rec[unit] if unit else None] = float(rec["value"])
    return out


def _claim_pairs(claim: Claim, recs: list[dict], spec: TableSpec):
    """(coordinates of the other axes, better cell, worse cell) wherever both sides have runs."""
    axis = claim.axis or spec.rows[0].name
    at_axis = claim.at_axis or spec.cols[-1].name
    others = [k for k in _cell_keys(spec) if k != axis]
    cells = {(tuple(r[k] for k in others), r[axis]): r for r in recs}
    keys = {k for (k, v), r in cells.items() if v == claim.better and (not claim.at or r[at_axis] in claim.at)}
    for key in sorted(keys, key=lambda t: tuple(map(str, t))):
        worse_key = key if claim.worse_at is None else tuple(
            claim.worse_at if k == at_axis else v for k, v in zip(others, key))
        if (worse_key, claim.worse) in cells:
            yield dict(zip(others, key)), cells[(key, claim.better)], cells[(worse_key, claim.worse)]


def _claim_row(claim: Claim, coords: dict, a: dict, b: dict, per_fold: dict, spec: TableSpec) -> dict:
    """One claims-CSV row: our means, the paper's, whether each shows the ordering, the paired test."""
    keys, fixed = _cell_keys(spec), spec.fixed()
    metric = coords.get("metric") or _metric_of(coords, spec)
    higher = higher_is_better(metric)
    if higher is None:
        raise ValueError(f"table {spec.name}: no better direction for metric {metric!r}")
    margin = None if claim.margin is None else claim.margin * spec.scale.get(metric, 1.0)
    pa, pb = a.get("paper"), b.get("paper")
    paper_known = pa is not None and pb is not None and not pd.isna(pa) and not pd.isna(pb)
    shown = {k: v for k, v in coords.items() if k != "metric" or "metric" in spec.axis_names}
    fa, fb = per_fold.get(tuple(a[k] for k in keys), {}), per_fold.get(tuple(b[k] for k in keys), {})
    common = sorted(set(fa) & set(fb), key=str)
    op = ('>' if higher else '<') + ('=' if margin is not None else '')
    worse_at = "" if claim.worse_at is None else f" at {claim.at_axis or spec.cols[-1].name} {claim.worse_at}"
    return {
        **{k: v for k, v in coords.items() if k != "metric"},
        "claim": f"{claim.better} {op} {claim.worse}{worse_at}",
        "where": ", ".join(f"{k}={v}" for k, v in shown.items()),
        "metric": metric,
        "dataset": coords.get("dataset", fixed.get("dataset", "")),
        "compression": coords.get("compression", fixed.get("compression", "")),
        "better": claim.better, "worse": claim.worse,
        "ours_better": float(a["mean"]), "ours_worse": float(b["mean"]),
        "paper_better": pa if paper_known else None, "paper_worse": pb if paper_known else None,
        "holds": _wins(a["mean"], b["mean"], higher, margin),
        "paper_holds": _wins(pa, pb, higher, margin) if paper_known else None,
        "margin": float("nan") if margin is None else margin,
        **paired_test([fa[f] for f in common], [fb[f] for f in common], higher, margin),
    }


def significance_note(claims: pd.DataFrame, spec: TableSpec) -> str:
    """The table's footnote: how many claimed orderings are significant after Holm's correction."""
    unit = _pair_axis(spec, _cell_keys(spec)) or "cell"
    leading = [a for a in spec.aggregate if a not in _cell_keys(spec)][:-1]
    within = f" ({', '.join(f'{a}s' for a in leading)} averaged within a {unit})" if leading else ""
    tested = claims["p_value"].notna()
    k, m = int(claims.loc[tested, "significant"].sum()), int(tested.sum())
    text = (f"Paired one-sided $t$-tests over {unit}s{within}, Holm-corrected: {k} of {m} orderings "
            f"significant at {spec.alpha:g}.")
    if claims["margin"].notna().any():
        text += " Orderings marked $\\geq$/$\\leq$ are non-inferiority tests within their margin."
    if m < len(claims):
        text += (f" {len(claims) - m} more without a test (fewer than 2 paired {unit}s, "
                 f"or the same difference in every {unit}).")
    return text


def write_table(summary: pd.DataFrame, name: str, out_tex: str | Path) -> list[str]:
    """Write ``out_tex``, its cells (same stem, .csv) and claims (``<stem>_claims.csv``); return the
    lines to print: one per claim and a summary line."""
    from cel.errors import ConfigError
    from cel.io import write_text

    if name not in TABLES:
        raise ConfigError(f"--name: unknown table '{name}' (known: {', '.join(TABLES)})")
    spec = TABLES[name]
    out = Path(out_tex)
    cells = cell_stats(summary, spec)
    claims = check_claims(cells, spec, summary)
    write_text(out, render(summary, spec, cells, claims))
    cells_path = out.with_suffix(".csv")
    shown = cells
    if spec.row_flags is not None:               # the flags as true / false, empty where the paper has none
        shown = cells.assign(**{f: cells[f].map({True: "true", False: "false"}) for f in spec.row_flags.flags})
    write_text(cells_path, shown.to_csv(index=False))
    claims_path = out.with_name(f"{out.stem}_claims.csv")
    write_text(claims_path, claims.to_csv(index=False))
    if spec.sizes is not None:
        write_text(out.with_name(f"{out.stem}_sizes.csv"), spec.sizes(summary).to_csv(index=False))

    def test_text(r) -> str:
        if pd.isna(r.p_value):
            return f"n={r.n_pairs} p=n/a p_holm=n/a"
        return (f"n={r.n_pairs} p={r.p_value:.3g} p_holm={r.p_holm:.3g}"
                f"{' significant' if r.significant else ''}")

    lines = [f"{'holds ' if r.holds else 'FAILS '} {r.where}: {r.claim:<28} {r.ours_better:.4f} vs "
             f"{r.ours_worse:.4f}  {test_text(r)}" for r in claims.itertuples()]
    tested = claims["p_value"].notna()
    lines.append(f"wrote {out}, {cells_path} and {claims_path}; {int(claims.loc[tested, 'significant'].sum())} of "
                 f"{int(tested.sum())} tested orderings significant (Holm, {spec.alpha:g}) "
                 f"({int(claims['holds'].sum())}/{len(claims)} claims hold)")
    return lines
