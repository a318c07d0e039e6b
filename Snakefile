from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# A real-data config names the shared recipe block; it goes under the config's own keys.
if config.get("recipes"):

    configfile: config["recipes"]


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    map="[A-Za-z0-9_]+",
    recipe="[A-Za-z0-9_.-]+",
    arm="finetune|scratch",
    fraction="[0-9.]+",
    seed="[0-9]+",
    group="[0-9]+",
    part="[0-9]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/saliency.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/predict.smk"


# Small and quick: on a cluster they run beside Snakemake instead of waiting in a queue.
localrules:
    all,
    demo_data,
    layout_sheet,
    predict_join,


if GROUP_SHARDS:

    # Joins only link files (the data's re-packs rows after a quarantined file), and
    # the plan reads the sheet.
    localrules:
        preprocess_plan,
        preprocess,
        join,


rule all:
    default_target: True
    input:
        PLAN.final_outputs,


# One run at a time in a run folder (xaiseg.runlock): a second stops before any job.
onstart:
    hold(PLAN)


onsuccess:
    finish(RUN, succeeded=True)


onerror:
    finish(RUN, succeeded=False)
