rule pseudo_masks:
    input:
        data=f"{RUN}/data",
        saliency=f"{RUN}/saliency/{{method}}",
        predictions=f"{RUN}/classifier/predictions.csv",
        metrics=f"{RUN}/classifier/metrics.json",
    output:
        directory(f"{RUN}/masks/{{method}}-{{rule}}"),
    log:
        f"{RUN}/logs/masks_{{method}}-{{rule}}.log",
    benchmark:
        f"{RUN}/benchmarks/masks_{{method}}-{{rule}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        rule_options=lambda wc: as_json(config["masks"]["rules"].get(wc.rule, {})),
        smooth_sigma=lambda wc: method_config(wc.method).get("smooth_sigma", 0),
        min_size=config["masks"]["min_size"],
        fill_holes="" if config["masks"]["fill_holes"] else "--no-fill-holes",
        gate=config["masks"]["gate_threshold"],
        code=code_hash("masks"),
    shell:
        "python -m xaiseg masks --data {input.data} --saliency {input.saliency}"
        " --predictions {input.predictions} --out {output}"
        " --rule {wildcards.rule} --rule-options {params.rule_options:q}"
        " --smooth-sigma {params.smooth_sigma} --min-size {params.min_size}"
        " {params.fill_holes} --gate-threshold {params.gate} > {log} 2>&1"
