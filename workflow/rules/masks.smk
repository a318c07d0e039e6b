rule masks:
    input:
        data=f"{RUN}/data",
        saliency=lambda wc: PLAN.recipes[wc.recipe].inputs["saliency"],
        predictions=f"{RUN}/classifier/predictions.csv",
        metrics=f"{RUN}/classifier/metrics.json",
    output:
        directory(PLAN.job_folder("masks", "{recipe}")),
    log:
        f"{RUN}/logs/masks_{{recipe}}{GROUP_TAG}.log",
    benchmark:
        f"{RUN}/benchmarks/masks_{{recipe}}{GROUP_TAG}.tsv"
    # On the way to every segmenter: first when jobs queue for cores or GPUs.
    priority: 1
    conda:
        "../../envs/xaiseg.yaml"
    params:
        maps=lambda wc, input: [f"{Path(m).name}={m}" for m in input.saliency],
        classifier=lambda wc, input: os.path.dirname(input.predictions),
        settings=lambda wc: PLAN.recipes[wc.recipe].settings,
        group=group_flag,
        code=code("masks"),
    shell:
        f"{XAISEG} masks --data {{input.data}} --saliency {{params.maps:q}}"
        " --classifier {params.classifier} --out {output}"
        " --settings {params.settings:q} {params.group} > {log} 2>&1"
