rule train_segmenter_pseudo:
    input:
        data=f"{RUN}/data",
        masks=f"{RUN}/masks/{{method}}-{{rule}}",
    output:
        model=f"{RUN}/segmenter/pseudo-{{method}}-{{rule}}/model.safetensors",
        metrics=f"{RUN}/segmenter/pseudo-{{method}}-{{rule}}/metrics.json",
        predictions=directory(f"{RUN}/segmenter/pseudo-{{method}}-{{rule}}/predictions"),
    log:
        f"{RUN}/logs/segmenter_pseudo-{{method}}-{{rule}}.log",
    benchmark:
        f"{RUN}/benchmarks/segmenter_pseudo-{{method}}-{{rule}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: config["threads"]
    params:
        out=lambda wc, output: os.path.dirname(output.model),
        args=training_args("segmenter"),
        code=code_hash("segmenter"),
    shell:
        "python -m xaiseg train-segmenter --data {input.data} --masks {input.masks}"
        " --out {params.out}"
        " {params.args} --threads {threads} > {log} 2>&1"


rule train_segmenter_supervised:
    input:
        data=f"{RUN}/data",
    output:
        model=f"{RUN}/segmenter/supervised/model.safetensors",
        metrics=f"{RUN}/segmenter/supervised/metrics.json",
        predictions=directory(f"{RUN}/segmenter/supervised/predictions"),
    log:
        f"{RUN}/logs/segmenter_supervised.log",
    benchmark:
        f"{RUN}/benchmarks/segmenter_supervised.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: config["threads"]
    params:
        out=lambda wc, output: os.path.dirname(output.model),
        args=training_args("segmenter"),
        code=code_hash("segmenter"),
    shell:
        "python -m xaiseg train-segmenter --data {input.data} --out {params.out}"
        " {params.args} --threads {threads} > {log} 2>&1"
