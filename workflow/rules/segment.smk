# Every segmenter of the plan: on a recipe's pseudo-masks, on ground truth, or on a
# share of it (fine-tuned or from scratch); the plan names each one's inputs.


rule train_segmenter:
    input:
        data=f"{RUN}/data",
        init=lambda wc: PLAN.segmenters[wc.name].inputs["init"],
        masks=lambda wc: PLAN.segmenters[wc.name].inputs.get("masks", []),
        gate=lambda wc: PLAN.segmenters[wc.name].inputs["gate"],
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
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        masks=lambda wc, input: f"--masks {input.masks}" if input.masks else "",
        gate=lambda wc, input: (
            f"--classifier {os.path.dirname(input.gate[0])}" if input.gate else ""
        ),
        settings=lambda wc: PLAN.segmenters[wc.name].settings,
        code=code("segmenter"),
    shell:
        f"{XAISEG_TRAIN} train-segmenter --data {{input.data}} {{params.masks}}"
        " --out {params.out} {params.gate} --settings {params.settings:q}"
        " --threads {threads} > {log} 2>&1"
