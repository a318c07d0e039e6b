rule masks:
    input:
        data=f"{RUN}/data",
        saliency=lambda wc: PLAN.recipes[wc.recipe].inputs.get("saliency", []),
        # A self-training round reads the previous round's segmenter instead of maps.
        segmenter=lambda wc: PLAN.recipes[wc.recipe].inputs.get("predictions", []),
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
        sources=lambda wc, input: (
            "--saliency "
            + " ".join(shlex.quote(f"{Path(m).name}={m}") for m in input.saliency)
            if input.saliency
            else f"--predictions {input.segmenter}"
        ),
        classifier=lambda wc, input: os.path.dirname(input.predictions),
        settings=lambda wc: PLAN.recipes[wc.recipe].settings,
        group=group_flag,
        code=code("masks"),
    shell:
        f"{XAISEG} masks --data {{input.data}} {{params.sources}}"
        " --classifier {params.classifier} --out {output}"
        " --settings {params.settings:q} {params.group} > {log} 2>&1"
