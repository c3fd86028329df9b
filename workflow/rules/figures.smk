# Figures (issue #13) and the reproduction report. Logic lives in cel.figs / cel.report_doc; here
# only which figures this profile's grid can feed, their inputs and their outputs.
#
# Targets (for each dataset D of the profile whose grid has the figure's runs):
#   figures                                   every buildable figure below
#   {RES}/figures/fig3_D.pdf                  test MSE vs compression on dense/original/sparse (summary.csv)
#   {RES}/figures/fig4_D.pdf                  test MSE by item interaction bucket (the runs' metrics.json)
#   {RES}/figures/fig5_D.pdf                  clusters by mean rating + genre entropy (one CEL run)
#   {RES}/figures/fig6_D.pdf                  five split criteria (summary.csv)
#   {RES}/figures/fig7b_D.pdf                 share of B_q rows outside C (trains its own CEL runs)
#   {RES}/figures/prop1.pdf                   Proposition 1 on planted synthetic data (its own runs)
#   report                                    {RES}/report/report.tex (+ .pdf with a TeX engine)
# Each figure also writes .png and .csv (the plotted points) beside the .pdf. The PNGs (and Figure
# 5's entropy CSV, each table's cells as HTML) are marked report(...) for
# `snakemake --report report.html` (categories Figures / Tables).
from cel.figs.fig6 import CRITERIA as _FIG6_CRITERIA


def _grid(method, dataset, variant=None, compression=None, model="nmf", task="regression"):
    """The grid's runs of one cell pattern (None = any)."""
    return [r for r in RUNS if r.method == method and r.dataset == dataset and r.model == model and r.task == task
            and (variant is None or r.variant == variant)
            and (compression is None or float(r.compression) == float(compression))]


def _comps(method, dataset, variant=None, below_100=True):
    cs = {r.compression for r in _grid(method, dataset, variant)}
    return sorted((c for c in cs if not below_100 or float(c) < 100), key=float)


def _datasets():
    return [d for d in CFG.raw["datasets"] if not CFG.only_datasets or d in CFG.only_datasets]


def _fig3_variants(d):
    return [v for v in ("dense", "original", "sparse") if _comps("cel", d, v) and _grid("full", d, v, 100)]


def _fig4_comp(d):
    common = [c for c in _comps("cel", d, "original") if _grid("prehash_kmq", d, "original", c)]
    if not common or not _grid("full", d, "original", 100):
        return None
    return "1" if "1" in common else common[0]


def _fig5_run(d):
    cs = _comps("cel", d, "original")
    runs = [r for r in _grid("cel", d, "original", cs[0]) if r.seed == 0] if cs else []
    return min(runs, key=lambda r: r.fold) if runs else None


def _fig6_ok(d):
    return all(_comps(m, d, "original") for m in _FIG6_CRITERIA)


def buildable_figures():
    """The figure files this profile's grid can feed (what the `figures` target builds)."""
    out = []
    for d in _datasets():
        ok = {"fig3": bool(_fig3_variants(d)), "fig4": _fig4_comp(d) is not None, "fig5": _fig5_run(d) is not None,
              "fig6": _fig6_ok(d), "fig7b": bool(_comps("cel", d, "original"))}
        out += [f"{RES}/figures/{f}_{d}.pdf" for f, good in ok.items() if good]
    return out + [f"{RES}/figures/prop1.pdf"]


def _metrics(runs):
    return [str(paths.run_dir(RES, r) / "metrics.json") for r in runs]


def _fig4_inputs(wildcards):
    d, c = wildcards.dataset, _fig4_comp(wildcards.dataset)
    if c is None:
        raise ValueError(f"fig4: the grid has no cel and prehash_kmq at a common compression with full at 100 on {d}")
    runs = (_grid("cel", d, "original", c) + _grid("prehash_kmq", d, "original", c) + _grid("full", d, "original", 100)
            + _grid("cel", d, "original", 100))
    return _metrics(runs)


def _fig4_params(wildcards):
    c = _fig4_comp(wildcards.dataset)
    pers = "cel@100" if _grid("cel", wildcards.dataset, "original", 100) else "none"
    return f"--compression {c} --personalized {pers}"


def _fig3_params(wildcards):
    d = wildcards.dataset
    vs = _fig3_variants(d)
    if not vs:
        raise ValueError(f"fig3: the grid has no cel below 100% with full at 100 on any variant of {d}")
    pers = "cel_personalized" if any(_grid("cel_personalized", d, v) for v in vs) else "none"
    return f"--variants {','.join(vs)} --personalized {pers}"


def _fig5_inputs(wildcards):
    r = _fig5_run(wildcards.dataset)
    if r is None:
        raise ValueError(f"fig5: the grid has no cel run below 100% on {wildcards.dataset}/original")
    vdir = f"{RES}/data/{wildcards.dataset}/original"
    return {"metrics": _metrics([r])[0], "interactions": f"{vdir}/interactions.parquet",
            "folds": f"{vdir}/folds.parquet"}


def _fig5_run_dir(wildcards):
    return str(paths.run_dir(RES, _fig5_run(wildcards.dataset)))


def _fig6_inputs(wildcards):
    if not _fig6_ok(wildcards.dataset):
        raise ValueError(f"fig6: the grid lacks some of {', '.join(_FIG6_CRITERIA)} on {wildcards.dataset}/original")
    return f"{RES}/summary.csv"


def _fig7b_comps(wildcards):
    cs = _comps("cel", wildcards.dataset, "original")
    if not cs:
        raise ValueError(f"fig7b: the grid has no cel run below 100% on {wildcards.dataset}/original")
    return " ".join(f"--compression {c}" for c in cs)


rule figures:
    input:
        buildable_figures(),


rule fig3:
    input:
        f"{RES}/summary.csv",
    output:
        pdf=f"{RES}/figures/fig3_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig3_{{dataset}}.png", category="Figures", subcategory="Figure 3"),
        csv=f"{RES}/figures/fig3_{{dataset}}.csv",
    params:
        cel=CEL, config=RESOLVED, extra=_fig3_params,
    log:
        f"{RES}/logs/figures/fig3_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} plot {params.config} --name fig3 --dataset {wildcards.dataset} --summary {input} "
        "{params.extra} --out {output.pdf} > {log} 2>&1"


rule fig4:
    input:
        _fig4_inputs,
    output:
        pdf=f"{RES}/figures/fig4_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig4_{{dataset}}.png", category="Figures", subcategory="Figure 4"),
        csv=f"{RES}/figures/fig4_{{dataset}}.csv",
    params:
        cel=CEL, config=RESOLVED, extra=_fig4_params,
    log:
        f"{RES}/logs/figures/fig4_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} plot {params.config} --name fig4 --dataset {wildcards.dataset} {params.extra} "
        "--out {output.pdf} > {log} 2>&1"


rule fig5:
    input:
        unpack(_fig5_inputs),
    output:
        pdf=f"{RES}/figures/fig5_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig5_{{dataset}}.png", category="Figures", subcategory="Figure 5"),
        csv=f"{RES}/figures/fig5_{{dataset}}.csv",
        entropy=report(f"{RES}/figures/fig5_{{dataset}}_entropy.csv", category="Figures", subcategory="Figure 5"),
    params:
        cel=CEL, config=RESOLVED, run=_fig5_run_dir,
    log:
        f"{RES}/logs/figures/fig5_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} plot {params.config} --name fig5 --dataset {wildcards.dataset} --run {params.run} "
        "--out {output.pdf} > {log} 2>&1"


rule fig6:
    input:
        _fig6_inputs,
    output:
        pdf=f"{RES}/figures/fig6_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig6_{{dataset}}.png", category="Figures", subcategory="Figure 6"),
        csv=f"{RES}/figures/fig6_{{dataset}}.csv",
    params:
        cel=CEL, config=RESOLVED,
    log:
        f"{RES}/logs/figures/fig6_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} plot {params.config} --name fig6 --dataset {wildcards.dataset} --summary {input} "
        "--out {output.pdf} > {log} 2>&1"


rule fig7b:
    input:
        interactions=f"{RES}/data/{{dataset}}/original/interactions.parquet",
        folds=f"{RES}/data/{{dataset}}/original/folds.parquet",
    output:
        pdf=f"{RES}/figures/fig7b_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig7b_{{dataset}}.png", category="Figures", subcategory="Figure 7b"),
        csv=f"{RES}/figures/fig7b_{{dataset}}.csv",
    params:
        cel=CEL, config=RESOLVED, comps=_fig7b_comps,
    log:
        f"{RES}/logs/figures/fig7b_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} plot {params.config} --name fig7b --dataset {wildcards.dataset} {params.comps} "
        "--out {output.pdf} > {log} 2>&1"


rule prop1:
    output:
        pdf=f"{RES}/figures/prop1.pdf",
        png=report(f"{RES}/figures/prop1.png", category="Figures", subcategory="Proposition 1"),
        csv=f"{RES}/figures/prop1.csv",
    params:
        cel=CEL, config=RESOLVED, work=f"{RES}/figures/prop1_runs",
    log:
        f"{RES}/logs/figures/prop1.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} plot {params.config} --name prop1 --work {params.work} --out {output.pdf} > {log} 2>&1"


rule table_html:
    input:
        f"{RES}/tables/{{table}}.csv",
    output:
        report(f"{RES}/report/tables/{{table}}.html", category="Tables"),
    params:
        cel=CEL, config=RESOLVED,
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} report {params.config} --table-html {input} --out {output}"


rule report_doc:
    input:
        tables=[f"{RES}/tables/{t}.tex" for t in CFG.raw["tables"]],
        html=[f"{RES}/report/tables/{t}.html" for t in CFG.raw["tables"]],
        figures=buildable_figures(),
    output:
        f"{RES}/report/report.tex",
    params:
        cel=CEL, config=RESOLVED,
    log:
        f"{RES}/logs/report_doc.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "{params.cel} report {params.config} --out {output} > {log} 2>&1"


rule report:
    input:
        f"{RES}/report/report.tex",
