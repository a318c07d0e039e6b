rule evaluate:
    input:
        unpack(evaluated_inputs),
        data=f"{RUN}/data",
        classifier=f"{RUN}/classifier/metrics.json",
        predictions=f"{RUN}/classifier/predictions.csv",
        # The label-only criterion asks the classifier (its model beside the metrics).
        classifier_model=f"{RUN}/classifier/model.safetensors",
        # With group_size, every shard group's per-image tables (evaluate_images).
        groups=lambda wc: group_parts("eval", "images") if GROUP_SHARDS else [],
        faithfulness=expand(
            f"{RUN}/eval/faithfulness/{{map}}/faithfulness.json", map=map_names()
        ),
    output:
        **finetune_outputs(),
        per_image=f"{RUN}/eval/per_image.csv",
        summary=f"{RUN}/eval/summary.csv",
        markdown=f"{RUN}/eval/summary.md",
        html=report(f"{RUN}/eval/summary.html", **shown("summary", "Results")),
        report=f"{RUN}/eval/report.md",
        comparisons=report(
            f"{RUN}/eval/comparisons.csv", **shown("comparisons", "Results")
        ),
        saliency_metrics=report(
            f"{RUN}/eval/saliency_metrics.csv", **shown("saliency_metrics", "Saliency")
        ),
        figure=report(
            f"{RUN}/eval/figures/overlays.png", **shown("overlays", "Overlays")
        ),
        extremes=report(
            f"{RUN}/eval/figures/overlays_best_median_worst.png",
            **shown("overlays", "Overlays"),
        ),
        roc=report(
            f"{RUN}/eval/figures/classifier_roc.png",
            **shown("classifier_roc", "Classifier"),
        ),
        thresholds=report(
            f"{RUN}/eval/figures/dice_vs_threshold.png",
            **shown("dice_vs_threshold", "Saliency"),
        ),
        sanity=report(f"{RUN}/eval/figures/sanity.png", **shown("sanity", "Saliency")),
        run_summary=f"{RUN}/summary.csv",
    log:
        f"{RUN}/logs/evaluate.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        out=lambda wc, output: os.path.dirname(output.summary),
        things=evaluated_things(),
        maps=[f"{m}={RUN}/saliency/{m}" for m in map_names()],
        faithfulness=[f"{m}={RUN}/eval/faithfulness/{m}" for m in map_names()],
        settings=settings_json("evaluate"),
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
            unpack(evaluated_inputs),
            data=f"{RUN}/data",
        output:
            directory(job_folder("eval", "images")),
        log:
            f"{RUN}/logs/evaluate_images{GROUP_TAG}.log",
        benchmark:
            f"{RUN}/benchmarks/evaluate_images{GROUP_TAG}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            things=evaluated_things(),
            maps=[f"{m}={RUN}/saliency/{m}" for m in map_names()],
            group=group_flag,
            code=code("evaluate_images"),
        shell:
            f"{XAISEG} evaluate-images --data {{input.data}} --evaluate {{params.things:q}}"
            " --saliency {params.maps:q} --out {output} {params.group} > {log} 2>&1"


rule explain:
    input:
        data=f"{RUN}/data",
        predictions=f"{RUN}/segmenter/{{name}}/predictions",
        saliency=lambda wc: expand(
            f"{RUN}/saliency/{{map}}", map=explained_segmenters()[wc.name]
        ),
    output:
        figure=report(
            f"{RUN}/eval/explain/{{name}}/figure.png",
            **shown("explain", "Segmenter explained", "{name}"),
        ),
        saliency_metrics=report(
            f"{RUN}/eval/explain/{{name}}/saliency_metrics.csv",
            **shown("saliency_metrics", "Segmenter explained", "{name}"),
        ),
    log:
        f"{RUN}/logs/explain_{{name}}.log",
    benchmark:
        f"{RUN}/benchmarks/explain_{{name}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        out=lambda wc, output: os.path.dirname(output.figure),
        maps=lambda wc: [
            f"{m}={RUN}/saliency/{m}" for m in explained_segmenters()[wc.name]
        ],
        settings=settings_json("evaluate"),
        code=code("explain"),
    shell:
        f"{XAISEG} explain --data {{input.data}} --predictions {{input.predictions}}"
        " --saliency {params.maps:q} --out {params.out} --settings {params.settings:q}"
        " > {log} 2>&1"


rule faithfulness:
    input:
        data=f"{RUN}/data",
        classifier=f"{RUN}/classifier/model.safetensors",
        model=lambda wc: f"{RUN}/{SETTINGS.saliency.maps[wc.map].model}/model.safetensors",
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
        model=lambda wc, input: os.path.dirname(input.model),
        out=lambda wc, output: os.path.dirname(output.summary),
        saliency=saliency_json,
        settings=settings_json("faithfulness"),
        code=code("faithfulness"),
    shell:
        f"{XAISEG} faithfulness --data {{input.data}} --classifier {{params.classifier}}"
        " --model {params.model} --saliency {input.saliency} --map {wildcards.map}"
        " --saliency-settings {params.saliency:q} --out {params.out}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
