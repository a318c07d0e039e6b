rule saliency:
    input:
        data=f"{RUN}/data",
        model=f"{RUN}/classifier/model.safetensors",
    output:
        directory(f"{RUN}/saliency/{{method}}"),
    log:
        f"{RUN}/logs/saliency_{{method}}.log",
    benchmark:
        f"{RUN}/benchmarks/saliency_{{method}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: config["threads"]
    params:
        classifier=lambda wc, input: os.path.dirname(input.model),
        layer=lambda wc: layer_arg(wc.method),
        options=lambda wc: as_json(method_config(wc.method).get("options", {})),
        batch_size=config["saliency"]["batch_size"],
        seed=config["seed"],
        code=code_hash("saliency"),
    shell:
        "python -m xaiseg saliency --data {input.data} --classifier {params.classifier}"
        " --out {output} --method {wildcards.method}"
        " {params.layer} --options {params.options:q}"
        " --batch-size {params.batch_size} --seed {params.seed}"
        " --threads {threads} > {log} 2>&1"
