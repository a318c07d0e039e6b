rule evaluate:
    input:
        data=f"{RUN}/data",
        classifier=f"{RUN}/classifier/metrics.json",
        masks=expand(
            f"{RUN}/masks/{{pair}}", pair=[f"{m}-{r}" for m, r in pseudo_mask_pairs()]
        ),
        segmenters=expand(
            f"{RUN}/segmenter/{{name}}/predictions", name=segmenter_names()
        ),
        saliency=expand(f"{RUN}/saliency/{{method}}", method=methods()),
    output:
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
        saliency=[f"{m}={RUN}/saliency/{m}" for m in methods()],
        n_figure=config["evaluate"]["n_figure"],
        seed=config["seed"],
        code=code_hash("evaluate"),
    shell:
        "(python -m xaiseg evaluate --data {input.data} --evaluate {params.things:q}"
        " --saliency {params.saliency:q} --out {params.out} --n-figure {params.n_figure}"
        " --classifier-metrics {input.classifier}"
        " --seed {params.seed} && cp {output.summary} {output.run_summary}) > {log} 2>&1"
