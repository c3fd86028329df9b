# CEL reproduction workflow. Thin on purpose: rules live in workflow/rules/, logic in src/cel.
#   snakemake --cores 8 all                            the paper grid (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml all
#   snakemake --cores 2 results/tables/table7.tex     one target by name
# The paper grid is the default profile; a --configfile replaces it instead of merging into it,
# so a profile (smoke, quick) holds exactly the keys it states plus the schema defaults.
if not workflow.overwrite_configfiles:
    workflow.configfile("config/config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/figure_inputs.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        get_final_output(),
