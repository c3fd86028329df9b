# raw archive -> prepared tables -> variant -> CV split


# `cel fetch` copies/downloads to a temporary file next to the output, verifies it (readable zip,
# every listed member present, known checksums matching) and only then renames it into place: the
# output never holds a truncated zip or an HTML page, so after the mirror is fixed a plain rerun
# fetches again. On failure the log names the file, the hashes and what to do.
# The archive is shared by every profile (archives_dir): its rule holds nothing profile-specific
# (FETCH_CONFIG, common.smk), so running another profile never refetches it.
rule download_archive:
    output:
        f"{ARCH}/{{archive}}",
    params:
        config=FETCH_CONFIG,
        source=get_source_of_archive,
    log:
        f"{RES}/logs/download_archive/{{archive}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel fetch {params.config} --dataset {params.source} > {log} 2>&1"


rule prepare_dataset:
    input:
        get_archive,
    output:
        f"{RES}/data/{{dataset}}/prepared/interactions.parquet",
    params:
        config=RESOLVED,
        dataset_hash=get_dataset_hash,      # a changed dataset entry (csv column mapping, generator) reruns it
    log:
        f"{RES}/logs/prepare_dataset/{{dataset}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel prepare {params.config} --dataset {wildcards.dataset} > {log} 2>&1"


rule make_variant:
    input:
        f"{RES}/data/{{dataset}}/prepared/interactions.parquet",
    output:
        f"{RES}/data/{{dataset}}/{{variant}}/interactions.parquet",
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/make_variant/{{dataset}}/{{variant}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel variant {params.config} --dataset {wildcards.dataset} --variant {wildcards.variant} > {log} 2>&1"


rule make_split:
    input:
        f"{RES}/data/{{dataset}}/{{variant}}/interactions.parquet",
    output:
        f"{RES}/data/{{dataset}}/{{variant}}/folds.parquet",
    params:
        config=RESOLVED,
    log:
        f"{RES}/logs/make_split/{{dataset}}/{{variant}}.log",
    conda:
        "../../envs/cel.yaml"
    shell:
        "cel split {params.config} --dataset {wildcards.dataset} --variant {wildcards.variant} > {log} 2>&1"
