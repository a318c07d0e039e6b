rule pseudo_masks:
    input:
        data=f"{RUN}/data",
        saliency=lambda wc: [f"{RUN}/saliency/{m}" for m in recipe_maps(wc)],
        predictions=f"{RUN}/classifier/predictions.csv",
        metrics=f"{RUN}/classifier/metrics.json",
    output:
        directory(job_folder("masks", "{recipe}")),
    log:
        f"{RUN}/logs/masks_{{recipe}}{GROUP_TAG}.log",
    benchmark:
        f"{RUN}/benchmarks/masks_{{recipe}}{GROUP_TAG}.tsv"
    # On the way to every pseudo-mask: first when jobs queue for cores or GPUs.
    priority: 1
    conda:
        "../../envs/xaiseg.yaml"
    params:
        maps=lambda wc: [f"{m}={RUN}/saliency/{m}" for m in recipe_maps(wc)],
        classifier=lambda wc, input: os.path.dirname(input.predictions),
        settings=recipe_json,
        group=group_flag,
        code=code("masks"),
    shell:
        f"{XAISEG} masks --data {{input.data}} --saliency {{params.maps:q}}"
        " --classifier {params.classifier} --out {output}"
        " --settings {params.settings:q} {params.group} > {log} 2>&1"


if GROUP_SHARDS:

    rule pseudo_masks_join:
        input:
            data=f"{RUN}/data",
            parts=lambda wc: group_parts("masks", wc.recipe),
        output:
            directory(f"{RUN}/masks/{{recipe}}"),
        log:
            f"{RUN}/logs/join_masks_{{recipe}}.log",
        benchmark:
            f"{RUN}/benchmarks/join_masks_{{recipe}}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            code=code("join"),
        shell:
            f"{XAISEG} join --data {{input.data}} --parts {{input.parts}} --out {{output}}"
            " > {log} 2>&1"
