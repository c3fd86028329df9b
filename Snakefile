# CEL reproduction workflow. Thin on purpose: rules live in workflow/rules/, logic in src/cel.
#   snakemake --cores 8 all                            the paper grid (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml all
#   snakemake --cores 2 results/tables/table7.tex     one target by name
configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        get_final_output(),
