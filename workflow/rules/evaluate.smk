rule evaluate:
    input:
        data=f"{RUN}/data",
        classifier=f"{RUN}/classifier/metrics.json",
        masks=expand(f"{RUN}/masks/{{recipe}}", recipe=recipe_names()),
        segmenters=expand(
            f"{RUN}/segmenter/{{name}}/predictions", name=segmenter_names()
        ),
        saliency=expand(f"{RUN}/saliency/{{map}}", map=map_names()),
    output:
        **finetune_outputs(),
        per_image=f"{RUN}/eval/per_image.csv",
        summary=f"{RUN}/eval/summary.csv",
        markdown=f"{RUN}/eval/summary.md",
        report=f"{RUN}/eval/report.md",
        figure=f"{RUN}/eval/figures/overlays.png",
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
        settings=settings_json("evaluate"),
        code=code("evaluate"),
    shell:
        f"({XAISEG} evaluate --data {{input.data}} --evaluate {{params.things:q}}"
        " --saliency {params.maps:q} --out {params.out}"
        " --classifier-metrics {input.classifier} --settings {params.settings:q}"
        " && cp {output.summary} {output.run_summary}) > {log} 2>&1"


rule explain:
    input:
        data=f"{RUN}/data",
        predictions=f"{RUN}/segmenter/{{name}}/predictions",
        saliency=lambda wc: expand(
            f"{RUN}/saliency/{{map}}", map=explained_segmenters()[wc.name]
        ),
    output:
        figure=f"{RUN}/eval/explain/{{name}}/figure.png",
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
