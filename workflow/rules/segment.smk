# Every segmenter of the plan: on a recipe's pseudo-masks, on ground truth, or on a
# share of it (fine-tuned or from scratch); the plan names each one's inputs.


rule train_segmenter:
    input:
        # Its start weights, training masks (none: ground truth) and gate's files.
        unpack(lambda wc: PLAN.segmenters[wc.name].inputs),
        data=f"{RUN}/data",
    output:
        model=f"{RUN}/segmenter/{{name}}/model.safetensors",
        metrics=f"{RUN}/segmenter/{{name}}/metrics.json",
        predictions=directory(f"{RUN}/segmenter/{{name}}/predictions"),
    log:
        f"{RUN}/logs/segmenter_{{name}}.log",
    benchmark:
        f"{RUN}/benchmarks/segmenter_{{name}}.tsv"
    wildcard_constraints:
        name=one_of(PLAN.segmenters),
    priority: lambda wc: PLAN.segmenter_priority(wc.name)
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=gpu_request,
    params:
        launch=launch,
        sources=lambda wc: PLAN.segmenter_sources(wc.name),
        settings=lambda wc: PLAN.segmenters[wc.name].settings,
        code=code("segmenter"),
    shell:
        f"{XAISEG_TRAIN} train-segmenter --data {{input.data}} {{params.sources}}"
        f" --out {RUN}/segmenter/{{wildcards.name}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


# DoLL's start when finetune.pretrained is label_choice: the recipe U-Net the label-only
# criterion chooses, known once every recipe's U-Net is trained.
rule choose_segmenter:
    input:
        PLAN.label_choice_files,
        data=f"{RUN}/data",
    output:
        model=f"{RUN}/label_choice/model.safetensors",
        criterion=f"{RUN}/label_choice/criterion.csv",
    log:
        f"{RUN}/logs/label_choice.log",
    benchmark:
        f"{RUN}/benchmarks/label_choice.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        segmenters=PLAN.label_choice_args,
        tie=SETTINGS.evaluate.choice_tie,
        code=code("label_choice"),
    shell:
        f"{XAISEG} choose-segmenter --data {{input.data}} --segmenters {{params.segmenters}}"
        f" --tie {{params.tie}} --out {RUN}/label_choice > {{log}} 2>&1"


# The count runs' mixed U-Nets (finetune.mixed_views) train on the chosen recipe's
# pseudo-masks, copied beside its U-Net.
rule choose_masks:
    input:
        criterion=f"{RUN}/label_choice/criterion.csv",
        masks=list(PLAN.label_choice_masks.values()),
    output:
        directory(f"{RUN}/label_choice/masks"),
    log:
        f"{RUN}/logs/label_choice_masks.log",
    benchmark:
        f"{RUN}/benchmarks/label_choice_masks.tsv"
    priority: 1
    conda:
        "../../envs/xaiseg.yaml"
    params:
        masks=PLAN.label_choice_masks_args,
        code=code("label_choice"),
    shell:
        f"{XAISEG} choose-masks --criterion {{input.criterion}} --masks {{params.masks}}"
        " --out {output} > {log} 2>&1"
