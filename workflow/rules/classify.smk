rule train_classifier:
    input:
        data=f"{RUN}/data",
    output:
        model=f"{RUN}/classifier/model.safetensors",
        spec=f"{RUN}/classifier/model.json",
        metrics=f"{RUN}/classifier/metrics.json",
        predictions=f"{RUN}/classifier/predictions.csv",
    params:
        args=training_args("classifier"),
        code=code_hash("classifier"),
    threads: config["threads"]
    log:
        f"{RUN}/logs/train_classifier.log",
    benchmark:
        f"{RUN}/benchmarks/train_classifier.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    shell:
        "{XAISEG} train-classifier --data {input.data} --out {RUN}/classifier"
        " {params.args} --threads {threads} > {log} 2>&1"
