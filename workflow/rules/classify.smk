rule train_classifier:
    input:
        data=f"{RUN}/data",
    output:
        model=f"{RUN}/classifier/model.safetensors",
        spec=f"{RUN}/classifier/model.json",
        metrics=f"{RUN}/classifier/metrics.json",
        predictions=f"{RUN}/classifier/predictions.csv",
    log:
        f"{RUN}/logs/train_classifier.log",
    benchmark:
        f"{RUN}/benchmarks/train_classifier.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: config["threads"]
    params:
        out=lambda wc, output: os.path.dirname(output.model),
        args=training_args("classifier"),
        code=code_hash("classifier"),
    shell:
        "python -m xaiseg train-classifier --data {input.data} --out {params.out}"
        " {params.args} --threads {threads} > {log} 2>&1"
