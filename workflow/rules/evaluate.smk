# Every artifact scored against ground truth (PLAN.scored: pseudo-masks, segmenters'
# predictions and the recipes' maps), the tables, figures and the report.
MAPS = PLAN.recipe_maps
MAP_ARGS = [f"{m}={RUN}/saliency/{m}" for m in MAPS]


rule evaluate:
    input:
        **PLAN.scored,
        **PLAN.model_outputs("classifier"),
        # With group_size, every shard group's per-image tables (evaluate_images).
        data=f"{RUN}/data",
        # The report reads its metrics and its predictions (ROC, gates).
        groups=lambda wc: group_parts("eval", "images") if GROUP_SHARDS else [],
        faithfulness=[f"{RUN}/eval/faithfulness/{m}/faithfulness.json" for m in MAPS],
    output:
        **reported(report, PLAN.reported),
        **PLAN.evaluate_tables,
        run_summary=f"{RUN}/summary.csv",
    log:
        f"{RUN}/logs/evaluate.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        things=PLAN.evaluated,
        maps=MAP_ARGS,
        faithfulness=[f"{m}={RUN}/eval/faithfulness/{m}" for m in MAPS],
        settings=PLAN.sections["evaluate"],
        groups="--groups" if GROUP_SHARDS else "",
        code=code("evaluate"),
    shell:
        f"({XAISEG} evaluate --data {{input.data}} --evaluate {{params.things:q}}"
        f" --saliency {{params.maps:q}} --out {RUN}/eval"
        " --classifier-metrics {input.metrics} --settings {params.settings:q}"
        " --faithfulness {params.faithfulness:q}"
        " --classifier-predictions {input.predictions} {params.groups} {input.groups}"
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
            code=code("evaluate_images"),
        shell:
            f"{XAISEG} evaluate-images --data {{input.data}} --evaluate {{params.things:q}}"
            f" --saliency {{params.maps:q}} --out {{output}} {GROUP_ARG} > {{log}} 2>&1"


rule explain:
    input:
        data=f"{RUN}/data",
        predictions=f"{RUN}/segmenter/{{name}}/predictions",
        saliency=lambda wc: [PLAN.maps[m].folder for m in PLAN.explained[wc.name]],
    output:
        **reported(report, PLAN.explain_reported, ("Segmenter explained", "{name}")),
    log:
        f"{RUN}/logs/explain_{{name}}.log",
    benchmark:
        f"{RUN}/benchmarks/explain_{{name}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        maps=lambda wc, input: [f"{Path(m).name}={m}" for m in input.saliency],
        settings=PLAN.sections["evaluate"],
        code=code("explain"),
    shell:
        f"{XAISEG} explain --data {{input.data}} --predictions {{input.predictions}}"
        f" --saliency {{params.maps:q}} --out {RUN}/eval/explain/{{wildcards.name}}"
        " --settings {params.settings:q} > {log} 2>&1"


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
        gpu=gpu_request,
    params:
        model=lambda wc, input: os.path.dirname(input.model[0]),
        saliency=lambda wc: PLAN.maps[wc.map].settings,
        settings=PLAN.sections["faithfulness"],
        code=code("faithfulness"),
    shell:
        f"{XAISEG} faithfulness --data {{input.data}} --classifier {RUN}/classifier"
        " --model {params.model} --saliency {input.saliency} --map {wildcards.map}"
        f" --saliency-settings {{params.saliency:q}} --out {RUN}/eval/faithfulness/{{wildcards.map}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
