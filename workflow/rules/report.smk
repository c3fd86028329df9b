# all runs' metrics.json -> summary.csv -> LaTeX tables (MLflow is a separate sink: rule all)


rule aggregate_runs:
    input:
        metrics=get_all_metrics(),
    output:
        f"{RES}/summary.csv",
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/aggregate_runs.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel summarize {params.config} --out {output} > {log} 2>&1"


# a table's own runs -> its summary (so a table never waits on another table's runs)
rule table_summary:
    input:
        metrics=get_table_metrics,
    output:
        f"{RES}/tables/{{table}}.summary.csv",
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/table_summary/{{table}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel summarize {params.config} --table {wildcards.table} --out {output} > {log} 2>&1"


rule make_table:
    input:
        f"{RES}/tables/{{table}}.summary.csv",
    output:
        tex=f"{RES}/tables/{{table}}.tex",
        cells=f"{RES}/tables/{{table}}.csv",
        claims=f"{RES}/tables/{{table}}_claims.csv",
        html=report(f"{RES}/report/tables/{{table}}.html", category="Tables"),    # for snakemake --report
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/make_table/{{table}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel table {params.config} --name {wildcards.table} --summary {input} --out {output.tex} "
        "--html {output.html} > {log} 2>&1"


# Every table of the profile is a target by its name: `snakemake table6` builds Table 6's runs,
# its table and the MLflow mirror of those runs, and nothing else.
for _table in CFG.raw["tables"]:

    rule:
        name:
            _table
        input:
            [f"{RES}/tables/{_table}.tex"] + ([mirror_batch(_table)] if _table in MIRROR_BATCHES else []),


# Cheap rules run on the submitting host under a cluster executor (seconds, < 400 MB; the archive
# download needs the network that compute nodes often lack; the mirrors reach the tracking server)
localrules:
    download_archive,
    aggregate_runs,
    table_summary,
    make_table,
    mirror_mlflow,
    mirror_study,
