# one run = task x dataset x variant x model x method x compression x fold x seed (RUN, a
# RunKey pattern from common.smk); then its MLflow mirror, a sink nothing else waits on


rule train_run:
    input:
        unpack(get_run_inputs),
    output:
        f"{RES}/runs/{RUN}/metrics.json",
    params:
        cel=CEL,
        config=RESOLVED,
        run=get_run_key,
        config_hash=get_run_config_hash,
        outdir=f"{RES}/runs/{RUN}",
    threads: 1
    log:
        f"{RES}/logs/train_run/{RUN}.log",
    benchmark:
        f"{RES}/benchmarks/train_run/{RUN}.tsv"
    shell:
        "{params.cel} train {params.config} --run {params.run} --out {params.outdir} --threads {threads} > {log} 2>&1"


rule mirror_mlflow:
    input:
        f"{RES}/runs/{RUN}/metrics.json",
    output:
        f"{RES}/runs/{RUN}/mlflow.json",
    params:
        cel=CEL,
        config=RESOLVED,
        outdir=f"{RES}/runs/{RUN}",
    log:
        f"{RES}/logs/mirror_mlflow/{RUN}.log",
    shell:
        "{params.cel} mirror {params.config} {params.outdir} > {log} 2>&1"
