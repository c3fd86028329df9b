# one run = task x dataset x variant x model x method x compression x fold x seed (RUN, a
# RunKey pattern from common.smk); the MLflow mirror of a batch of runs (one per table), a sink
# nothing else waits on


rule train_run:
    input:
        unpack(get_run_inputs),
    output:
        f"{RES}/runs/{RUN}/metrics.json",
    params:
        config=RESOLVED,
        run=get_run_key,
        config_hash=get_run_config_hash,
        outdir=lambda wildcards, output: os.path.dirname(output[0]),     # the run's folder
        tuned=get_run_params_arg,
    threads: 1
    log:
        f"{RES}/logs/train_run/{RUN}.log",
    benchmark:
        f"{RES}/benchmarks/train_run/{RUN}.tsv"
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel train {params.config} --run {params.run} --out {params.outdir} --threads {threads} {params.tuned} > {log} 2>&1"


rule mirror_mlflow:
    input:
        get_batch_metrics,
    output:
        f"{RES}/mlflow/batches/{{batch}}.json",
    params:
        config=RESOLVED,
        run_dirs=lambda wildcards, input: " ".join(os.path.dirname(p) for p in input),
    log:
        f"{RES}/logs/mirror_mlflow/{{batch}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel mirror {params.config} {params.run_dirs} --record {output} > {log} 2>&1"


# One Optuna study (tuning.workers processes sharing its journal file or RDB): every trial trains
# on the fold's training part minus its validation slice; best_params.yaml feeds the final runs.
rule tune_study:
    input:
        interactions=f"{RES}/data/{{dataset}}/{{variant}}/interactions.parquet",
        folds=f"{RES}/data/{{dataset}}/{{variant}}/folds.parquet",
    output:
        f"{RES}/studies/{STUDY}/best_params.yaml",
    params:
        config=RESOLVED,
        study=get_study_key,
        config_hash=get_study_config_hash,
        outdir=lambda wildcards, output: os.path.dirname(output[0]),     # the study's folder
    threads: CFG.raw["tuning"]["workers"]
    log:
        f"{RES}/logs/tune_study/{STUDY}.log",
    benchmark:
        f"{RES}/benchmarks/tune_study/{STUDY}.tsv"
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel tune {params.config} --study {params.study} --out {params.outdir} --workers {threads} > {log} 2>&1"


# The study as an MLflow parent run, each trial a nested run (one process, after the study)
rule mirror_study:
    input:
        f"{RES}/studies/{STUDY}/best_params.yaml",
    output:
        f"{RES}/studies/{STUDY}/mlflow.json",
    params:
        config=RESOLVED,
        outdir=lambda wildcards, input: os.path.dirname(input[0]),      # the study's folder
    log:
        f"{RES}/logs/mirror_study/{STUDY}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel mirror-study {params.config} {params.outdir} > {log} 2>&1"
