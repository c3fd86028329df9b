"""LaTeX tables (booktabs): our mean ± std over folds beside the paper's value and the delta.

A table is a :class:`TableSpec` in ``TABLES``; later tables are added as specs, not code.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cel.paper import paper_value

METHOD_LABELS = {
    "full": "Vanilla full embedding", "etree": "eTree", "jnkm": "JNKM", "modulo": "Modulo", "bh": "BH",
    "ae": "AE", "hashgnn": "HashGNN", "prehash_k4": "PreHash ($K=4$)", "prehash_kmq": "PreHash ($K=M_q$)",
    "cel": "CEL", "cel_lite": "CEL-Lite", "cerp": "CERP", "qr": "QR",
}
DATASET_LABELS = {"ml-100k": "MovieLens-100k", "ml-1m": "MovieLens-1m", "ml-10m": "MovieLens-10m"}


@dataclass(frozen=True)
class TableSpec:
    name: str
    caption: str
    paper_table: str
    metric: str
    model: str
    variant: str
    datasets: tuple[str, ...]          # always shown (others appear when they have runs)
    compressions: tuple[str, ...]
    rows: tuple[str, ...]              # method order; methods with runs but not listed go last
    #: metric holding the size really stored at test time, in % of a full table (shown beside
    #: the nominal ratio where they differ by more than ``size_tolerance``, relative)
    size_metric: str = "item_compression_real"
    size_tolerance: float = 0.02
    #: dataset -> (paper table, model key): where a cell missing from ``paper_table`` is published
    #: for the same setting (Table 2's NMF column is Table 7's ML-1m column, with HashGNN added)
    fallback: tuple[tuple[str, str, str], ...] = ()
    #: orderings the paper claims: (better method, worse method, compressions), lower metric = better
    claims: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def paper(self, dataset: str, method: str, compression: str) -> float | None:
        value = paper_value(self.paper_table, dataset, method, compression, self.model)
        for ds, table, model in self.fallback:
            if value is None and ds == dataset:
                value = paper_value(table, dataset, method, compression, model)
        return value


TABLES: dict[str, TableSpec] = {
    "table7": TableSpec(
        name="table7",
        caption="Test MSE of rating prediction with NMF (Table 7), item embeddings compressed, users "
                "full. Ours: mean $\\pm$ std over folds (n = folds run); below: [paper; ours $-$ paper]; "
                "``stores'': what the method really stores at test time (rows, indices, codes, weights) "
                "in \\% of a full item table, where it differs from the nominal ratio $M_q/M$.",
        paper_table="table7", metric="test_mse", model="nmf", variant="original",
        datasets=("ml-100k",), compressions=("100", "5", "1", "0.5"),
        rows=("full", "etree", "jnkm", "modulo", "bh", "ae", "hashgnn", "prehash_k4", "prehash_kmq",
              "cel", "cel_lite", "cerp", "qr"),
        fallback=(("ml-1m", "table2", "NMF"),),
        claims=(  # Section 4.1.1 / A.2: learned hashing beats random hashing, structure beats full
            ("prehash_kmq", "prehash_k4", ("5", "1", "0.5")),
            ("prehash_k4", "bh", ("5", "1", "0.5")), ("prehash_k4", "ae", ("5", "1", "0.5")),
            ("bh", "modulo", ("5", "1", "0.5")), ("ae", "modulo", ("5", "1", "0.5")),
            ("jnkm", "full", ("100",)), ("etree", "full", ("100",)),
            *((("cel", m, ("5", "1", "0.5")) for m in ("etree", "jnkm", "modulo", "bh", "ae", "hashgnn",
                                                       "prehash_k4", "prehash_kmq"))),
            ("cel", "full", ("100",)), ("cel", "etree", ("100",)), ("cel", "jnkm", ("100",)),
        ),
    ),
}


def stored_note(stored: float | None, nominal: str, tolerance: float) -> str | None:
    """'stores X%' where the size really stored differs from the nominal ratio, else None."""
    if stored is None or pd.isna(stored):
        return None
    nom = float(nominal)
    if abs(stored - nom) <= tolerance * nom:
        return None
    return f"stores {stored:.3g}\\%"


def _cell(values: pd.Series, paper: float | None, note: str | None = None) -> str:
    extra = f" \\\\ \\scriptsize {note}" if note else ""
    if values.empty:
        return "--" if paper is None else f"\\shortstack{{-- \\\\ \\scriptsize[{paper:.4f}]}}"
    mean, std, n = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0, len(values)
    ours = f"{mean:.4f} $\\pm$ {std:.4f}$^{{n={n}}}$"
    if paper is None:
        return f"\\shortstack{{{ours} \\\\ \\scriptsize[--]{extra}}}"
    return f"\\shortstack{{{ours} \\\\ \\scriptsize[{paper:.4f}; ${mean - paper:+.4f}$]{extra}}}"


def _stored(summary: pd.DataFrame, spec: TableSpec) -> dict[tuple[str, str, str], float]:
    """(dataset, method, compression) -> mean stored size (% of a full table) over folds."""
    df = summary[(summary["metric"] == spec.size_metric) & (summary["model"] == spec.model)
                 & (summary["variant"] == spec.variant)]
    g = df.groupby(["dataset", "method", df["compression"].astype(str)])["value"].mean()
    return {k: float(v) for k, v in g.items()}


def cell_stats(summary: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Per (dataset, method, compression): mean, std, n over folds, paper value, delta."""
    df = summary[(summary["metric"] == spec.metric) & (summary["model"] == spec.model)
                 & (summary["variant"] == spec.variant)]
    g = df.groupby(["dataset", "method", "compression"])["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["paper"] = [spec.paper(d, m, str(c)) for d, m, c in zip(out["dataset"], out["method"], out["compression"])]
    out["delta"] = out["mean"] - out["paper"]
    stored = _stored(summary, spec)
    out["stored_percent"] = [stored.get((d, m, str(c))) for d, m, c in zip(out["dataset"], out["method"], out["compression"])]
    return out


def render(summary: pd.DataFrame, spec: TableSpec) -> str:
    df = summary[(summary["metric"] == spec.metric) & (summary["model"] == spec.model)
                 & (summary["variant"] == spec.variant)].copy()
    df["compression"] = df["compression"].astype(str)
    datasets = list(spec.datasets) + sorted(set(df["dataset"]) - set(spec.datasets))
    comps = list(spec.compressions) + sorted(set(df["compression"]) - set(spec.compressions), key=float, reverse=True)
    present = set(df["method"])
    rows = [m for m in spec.rows if m in present] + sorted(present - set(spec.rows))
    ncol = len(datasets) * len(comps)
    stored = _stored(summary, spec)
    lines = [
        "% Generated by `cel table` from results/summary.csv -- do not edit by hand.",
        "\\begin{table*}[t]", "\\centering", "\\small",
        f"\\caption{{{spec.caption}}}", f"\\label{{tab:{spec.name}}}",
        "\\resizebox{\\textwidth}{!}{%",
        f"\\begin{{tabular}}{{l{'c' * ncol}}}", "\\toprule",
        "Dataset & " + " & ".join(f"\\multicolumn{{{len(comps)}}}{{c}}{{{DATASET_LABELS.get(d, d)}}}"
                                    for d in datasets) + " \\\\",
    ]
    rules = " ".join(f"\\cmidrule(lr){{{2 + k * len(comps)}-{1 + (k + 1) * len(comps)}}}" for k in range(len(datasets)))
    lines += [rules, "Compression ratio & " + " & ".join(f"{c}\\%" for _ in datasets for c in comps) + " \\\\",
              "\\midrule"]
    for m in rows:
        cells = []
        for d in datasets:
            for c in comps:
                vals = df[(df["dataset"] == d) & (df["method"] == m) & (df["compression"] == c)]["value"]
                note = stored_note(stored.get((d, m, c)), c, spec.size_tolerance) if len(vals) else None
                cells.append(_cell(vals, spec.paper(d, m, c), note))
        lines.append(f"{METHOD_LABELS.get(m, m)} & " + " & ".join(cells) + " \\\\")
    if not rows:
        lines.append(f"\\multicolumn{{{ncol + 1}}}{{c}}{{no runs yet}} \\\\")
    lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table*}", ""]
    return "\n".join(lines)


def check_claims(stats: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Each claimed ordering per dataset and compression where both methods have runs: our means,
    whether it holds for us (``holds``), and whether the paper's own numbers show it."""
    idx = {(d, m, str(c)): v for d, m, c, v in zip(stats["dataset"], stats["method"], stats["compression"], stats["mean"])}
    rows = []
    for dataset in sorted(set(stats["dataset"])):
        for better, worse, comps in spec.claims:
            for c in comps:
                a, b = idx.get((dataset, better, c)), idx.get((dataset, worse, c))
                if a is None or b is None:
                    continue
                pa, pb = spec.paper(dataset, better, c), spec.paper(dataset, worse, c)
                rows.append({"dataset": dataset, "claim": f"{better} < {worse}", "compression": c,
                             "ours_better": a, "ours_worse": b, "holds": bool(a < b),
                             "paper_holds": None if pa is None or pb is None else bool(pa < pb)})
    return pd.DataFrame(rows, columns=["dataset", "claim", "compression", "ours_better", "ours_worse",
                                       "holds", "paper_holds"])
