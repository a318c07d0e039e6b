rule masks:
    input:
        # Its maps, or a self-training round's previous segmenter's predictions.
        unpack(lambda wc: PLAN.recipes[wc.recipe].inputs),
        data=f"{RUN}/data",
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
        sources=lambda wc: PLAN.mask_sources(wc.recipe),
        settings=lambda wc: PLAN.recipes[wc.recipe].settings,
        code=code("masks"),
    shell:
        f"{XAISEG} masks --data {{input.data}} {{params.sources}}"
        f" --classifier {RUN}/classifier --out {{output}}"
        f" --settings {{params.settings:q}} {GROUP_ARG} > {{log}} 2>&1"
