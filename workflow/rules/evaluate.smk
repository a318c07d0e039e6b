def evaluated_things():
    things = []
    for method, rule in pseudo_mask_pairs():
        things.append(f"{method}:{rule}:pseudo_mask:{RUN}/masks/{method}-{rule}")
        things.append(
            f"{method}:{rule}:segmenter:{RUN}/segmenter/pseudo-{method}-{rule}/predictions"
        )
    if config["segmenter"].get("supervised", True):
        things.append(f"ground_truth:none:supervised:{RUN}/segmenter/supervised/predictions")
    return things


rule evaluate:
    input:
        data=f"{RUN}/data",
        masks=expand(f"{RUN}/masks/{{pair}}", pair=[f"{m}-{r}" for m, r in pseudo_mask_pairs()]),
        segmenters=expand(f"{RUN}/segmenter/{{name}}/predictions", name=segmenter_names()),
        saliency=expand(f"{RUN}/saliency/{{method}}", method=methods()),
    output:
        per_image=f"{RUN}/eval/per_image.csv",
        summary=f"{RUN}/eval/summary.csv",
        markdown=f"{RUN}/eval/summary.md",
        figure=f"{RUN}/eval/figures/overlays.png",
        run_summary=f"{RUN}/summary.csv",
    params:
        things=evaluated_things(),
        saliency=[f"{m}={RUN}/saliency/{m}" for m in methods()],
        n_figure=config["evaluate"]["n_figure"],
        seed=config["seed"],
        code=code_hash("evaluate"),
    log:
        f"{RUN}/logs/evaluate.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    shell:
        "({XAISEG} evaluate --data {input.data} --evaluate {params.things:q}"
        " --saliency {params.saliency:q} --out {RUN}/eval --n-figure {params.n_figure}"
        " --seed {params.seed} && cp {output.summary} {output.run_summary}) > {log} 2>&1"
