# Figures (issue #13) and the reproduction report. Logic lives in cel.figs / cel.report_doc; here
# only their rules (inputs, outputs); which figures this profile's grid can feed, and the rules'
# input and param functions, are in figure_inputs.smk (no rules there, no functions here).
#
# Targets (for each dataset D of the profile whose grid has the figure's runs):
#   figures                                   every buildable figure below
#   {RES}/figures/fig3_D.pdf                  test MSE vs compression on dense/original/sparse (summary.csv)
#   {RES}/figures/fig4_D.pdf                  test MSE by item interaction bucket (the runs' metrics.json)
#   {RES}/figures/fig5_D.pdf                  clusters by mean rating + genre entropy (one CEL run)
#   {RES}/figures/fig6_D.pdf                  five split criteria (summary.csv)
#   {RES}/figures/fig7b_D.pdf                 share of B_q rows outside C (trains its own CEL runs)
#   {RES}/figures/prop1.pdf                   Proposition 1 on planted synthetic data (its own runs)
#   {RES}/figures/progressive_T_D.png        progressive score of a single-pass stream task T (fold 0,
#                                             seed 0: e.g. config/lite.yaml's stream_once; part of `all`)
#   report                                    {RES}/report/report.tex (+ .pdf with a TeX engine)
# Each figure also writes .png and .csv (the plotted points) beside the .pdf. The PNGs (and Figure
# 5's entropy CSV, each table's cells as HTML) are marked report(...) for
# `snakemake --report report.html` (categories Figures / Tables).


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
        config=RESOLVED, extra=_fig3_params,
    log:
        f"{RES}/logs/figures/fig3_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel plot {params.config} --name fig3 --dataset {wildcards.dataset} --summary {input} "
        "{params.extra} --out {output.pdf} > {log} 2>&1"


rule fig4:
    input:
        _fig4_inputs,
    output:
        pdf=f"{RES}/figures/fig4_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig4_{{dataset}}.png", category="Figures", subcategory="Figure 4"),
        csv=f"{RES}/figures/fig4_{{dataset}}.csv",
    params:
        config=RESOLVED, extra=_fig4_params,
    log:
        f"{RES}/logs/figures/fig4_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel plot {params.config} --name fig4 --dataset {wildcards.dataset} {params.extra} "
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
        config=RESOLVED, run=lambda wildcards, input: os.path.dirname(input.metrics),   # the run's folder
    log:
        f"{RES}/logs/figures/fig5_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel plot {params.config} --name fig5 --dataset {wildcards.dataset} --run {params.run} "
        "--out {output.pdf} > {log} 2>&1"


rule fig6:
    input:
        _fig6_inputs,
    output:
        pdf=f"{RES}/figures/fig6_{{dataset}}.pdf",
        png=report(f"{RES}/figures/fig6_{{dataset}}.png", category="Figures", subcategory="Figure 6"),
        csv=f"{RES}/figures/fig6_{{dataset}}.csv",
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/figures/fig6_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel plot {params.config} --name fig6 --dataset {wildcards.dataset} --summary {input} "
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
        config=RESOLVED, comps=_fig7b_comps,
    log:
        f"{RES}/logs/figures/fig7b_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel plot {params.config} --name fig7b --dataset {wildcards.dataset} {params.comps} "
        "--out {output.pdf} > {log} 2>&1"


rule prop1:
    output:
        pdf=f"{RES}/figures/prop1.pdf",
        png=report(f"{RES}/figures/prop1.png", category="Figures", subcategory="Proposition 1"),
        csv=f"{RES}/figures/prop1.csv",
    params:
        config=RESOLVED, work=f"{RES}/figures/prop1_runs",
    log:
        f"{RES}/logs/figures/prop1.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel plot {params.config} --name prop1 --work {params.work} --out {output.pdf} > {log} 2>&1"


rule report_doc:
    input:
        tables=[f"{RES}/tables/{t}.tex" for t in CFG.raw["tables"]],
        html=[f"{RES}/report/tables/{t}.html" for t in CFG.raw["tables"]],
        figures=buildable_figures(),
    output:
        f"{RES}/report/report.tex",
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/report_doc.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel report {params.config} --out {output} > {log} 2>&1"


rule report:
    input:
        f"{RES}/report/report.tex",


rule progressive:
    input:
        _progressive_inputs,
    output:
        report(f"{RES}/figures/progressive_{{task}}_{{dataset}}.png", category="Figures", subcategory="Streams"),
    params:
        config=RESOLVED, runs=_progressive_params,
    log:
        f"{RES}/logs/figures/progressive_{{task}}_{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel figure {params.config} {params.runs} --out {output} > {log} 2>&1"
