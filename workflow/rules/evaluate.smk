# Every artifact scored against ground truth (PLAN.scored: pseudo-masks, segmenters'
# predictions and the recipes' maps), the tables, figures and the report.
MAPS = PLAN.recipe_maps
# name=folder, as the CLI reads them
MAP_ARGS = [f"{m}={RUN}/saliency/{m}" for m in MAPS]


rule evaluate:
    input:
        **PLAN.scored,
        data=f"{RUN}/data",
        classifier=f"{RUN}/classifier/metrics.json",
        predictions=f"{RUN}/classifier/predictions.csv",
        # The label-only criterion asks the classifier (its model beside the metrics).
        classifier_model=f"{RUN}/classifier/model.safetensors",
        # With group_size, every shard group's per-image tables (evaluate_images).
        groups=lambda wc: group_parts("eval", "images") if GROUP_SHARDS else [],
        faithfulness=[f"{RUN}/eval/faithfulness/{m}/faithfulness.json" for m in MAPS],
    output:
        **reported(report, PLAN.reported),
        **({"few_table": f"{RUN}/eval/dice_vs_fraction.csv"} if PLAN.few_masks else {}),
        per_image=f"{RUN}/eval/per_image.csv",
        summary=f"{RUN}/eval/summary.csv",
        markdown=f"{RUN}/eval/summary.md",
        report=f"{RUN}/eval/report.md",
        run_summary=f"{RUN}/summary.csv",
    log:
        f"{RUN}/logs/evaluate.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        out=lambda wc, output: os.path.dirname(output.summary),
        things=PLAN.evaluated,
        maps=MAP_ARGS,
        faithfulness=[f"{m}={RUN}/eval/faithfulness/{m}" for m in MAPS],
        settings=PLAN.sections["evaluate"],
        groups=lambda wc, input: (
            f"--groups {' '.join(input.groups)}" if input.groups else ""
        ),
        code=code("evaluate"),
    shell:
        f"({XAISEG} evaluate --data {{input.data}} --evaluate {{params.things:q}}"
        " --saliency {params.maps:q} --out {params.out}"
        " --classifier-metrics {input.classifier} --settings {params.settings:q}"
        " --faithfulness {params.faithfulness:q}"
        " --classifier-predictions {input.predictions} {params.groups}"
        " && cp {output.summary} {output.run_summary}) > {log} 2>&1"


if GROUP_SHARDS:

    # Per-image scores of one shard group, gathered by evaluate.
    rule evaluate_images:
        input:
            **PLAN.scored,
            data=f"{RUN}/data",
        output:
            directory(PLAN.job_folder("eval", "images")),
        log:
            f"{RUN}/logs/evaluate_images{GROUP_TAG}.log",
        benchmark:
            f"{RUN}/benchmarks/evaluate_images{GROUP_TAG}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            things=PLAN.evaluated,
            maps=MAP_ARGS,
            group=group_flag,
            code=code("evaluate_images"),
        shell:
            f"{XAISEG} evaluate-images --data {{input.data}} --evaluate {{params.things:q}}"
            " --saliency {params.maps:q} --out {output} {params.group} > {log} 2>&1"


rule explain:
    input:
        data=f"{RUN}/data",
        predictions=f"{RUN}/segmenter/{{name}}/predictions",
        saliency=lambda wc: [PLAN.maps[m].folder for m in PLAN.explained[wc.name]],
    output:
        **reported(
            report,
            {
                "figure": (f"{RUN}/eval/explain/{{name}}/figure.png", "explain"),
                "saliency_metrics": (
                    f"{RUN}/eval/explain/{{name}}/saliency_metrics.csv",
                    "saliency_metrics",
                ),
            },
            ("Segmenter explained", "{name}"),
        ),
    log:
        f"{RUN}/logs/explain_{{name}}.log",
    benchmark:
        f"{RUN}/benchmarks/explain_{{name}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        out=lambda wc, output: os.path.dirname(output.figure),
        maps=lambda wc, input: [f"{Path(m).name}={m}" for m in input.saliency],
        settings=PLAN.sections["evaluate"],
        code=code("explain"),
    shell:
        f"{XAISEG} explain --data {{input.data}} --predictions {{input.predictions}}"
        " --saliency {params.maps:q} --out {params.out} --settings {params.settings:q}"
        " > {log} 2>&1"


rule faithfulness:
    input:
        data=f"{RUN}/data",
        classifier=f"{RUN}/classifier/model.safetensors",
        model=lambda wc: PLAN.maps[wc.map].inputs["model"],
        saliency=f"{RUN}/saliency/{{map}}",
    output:
        summary=f"{RUN}/eval/faithfulness/{{map}}/faithfulness.json",
    log:
        f"{RUN}/logs/faithfulness_{{map}}.log",
    benchmark:
        f"{RUN}/benchmarks/faithfulness_{{map}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        classifier=lambda wc, input: os.path.dirname(input.classifier),
        model=lambda wc, input: os.path.dirname(input.model[0]),
        out=lambda wc, output: os.path.dirname(output.summary),
        saliency=lambda wc: PLAN.maps[wc.map].settings,
        settings=PLAN.sections["faithfulness"],
        code=code("faithfulness"),
    shell:
        f"{XAISEG} faithfulness --data {{input.data}} --classifier {{params.classifier}}"
        " --model {params.model} --saliency {input.saliency} --map {wildcards.map}"
        " --saliency-settings {params.saliency:q} --out {params.out}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
