rule train_classifier:
    input:
        data=f"{RUN}/data",
        init=init_weights("classifier"),
    output:
        model=f"{RUN}/classifier/model.safetensors",
        spec=f"{RUN}/classifier/model.json",
        metrics=f"{RUN}/classifier/metrics.json",
        predictions=f"{RUN}/classifier/predictions.csv",
    log:
        f"{RUN}/logs/train_classifier.log",
    benchmark:
        f"{RUN}/benchmarks/train_classifier.tsv"
    # On the way to every pseudo-mask: first when jobs queue for cores or GPUs.
    priority: 2
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=classifier_json(),
        code=code("classifier"),
    shell:
        f"{XAISEG_TRAIN} train-classifier --data {{input.data}} --out {{params.out}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


rule train_counterfactual:
    input:
        data=f"{RUN}/data",
        init=init_weights("counterfactual"),
    output:
        model=f"{RUN}/counterfactual/model.safetensors",
        spec=f"{RUN}/counterfactual/model.json",
        metrics=f"{RUN}/counterfactual/metrics.json",
    log:
        f"{RUN}/logs/train_counterfactual.log",
    benchmark:
        f"{RUN}/benchmarks/train_counterfactual.tsv"
    # On the way to every pseudo-mask: first when jobs queue for cores or GPUs.
    priority: 2
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=settings_json("counterfactual"),
        code=code("counterfactual"),
    shell:
        f"{XAISEG_TRAIN} train-counterfactual --data {{input.data}} --out {{params.out}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


rule pretrain:
    input:
        data=f"{RUN}/data",
        init=init_weights("pretrain"),
    output:
        model=f"{RUN}/pretrain/model.safetensors",
        spec=f"{RUN}/pretrain/model.json",
        metrics=f"{RUN}/pretrain/metrics.json",
    log:
        f"{RUN}/logs/pretrain.log",
    benchmark:
        f"{RUN}/benchmarks/pretrain.tsv"
    # On the way to every pseudo-mask: first when jobs queue for cores or GPUs.
    priority: 2
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=pretrain_json(),
        code=code("pretrain"),
    shell:
        f"{XAISEG_TRAIN} pretrain --data {{input.data}} --out {{params.out}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
