from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/saliency.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
