# The trained models every pseudo-mask waits for: first when jobs queue for cores or
# GPUs (priority). A job given several GPUs trains data-parallel (launch).


rule train_classifier:
    input:
        data=f"{RUN}/data",
        init=PLAN.models["classifier"].inputs["init"],
    output:
        model=f"{RUN}/classifier/model.safetensors",
        spec=f"{RUN}/classifier/model.json",
        metrics=f"{RUN}/classifier/metrics.json",
        predictions=f"{RUN}/classifier/predictions.csv",
    log:
        f"{RUN}/logs/train_classifier.log",
    benchmark:
        f"{RUN}/benchmarks/train_classifier.tsv"
    priority: 2
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        command="train-classifier",
        out=lambda wc, output: os.path.dirname(output.model),
        settings=PLAN.models["classifier"].settings,
        code=code("classifier"),
    shell:
        f"{XAISEG_TRAIN} {{params.command}} --data {{input.data}} --out {{params.out}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


use rule train_classifier as train_counterfactual with:
    input:
        data=f"{RUN}/data",
        init=PLAN.models["counterfactual"].inputs["init"],
    output:
        model=f"{RUN}/counterfactual/model.safetensors",
        spec=f"{RUN}/counterfactual/model.json",
        metrics=f"{RUN}/counterfactual/metrics.json",
    log:
        f"{RUN}/logs/train_counterfactual.log",
    benchmark:
        f"{RUN}/benchmarks/train_counterfactual.tsv"
    params:
        command="train-counterfactual",
        settings=PLAN.models["counterfactual"].settings,
        code=code("counterfactual"),


use rule train_classifier as pretrain with:
    input:
        data=f"{RUN}/data",
        init=PLAN.models["pretrain"].inputs["init"],
    output:
        model=f"{RUN}/pretrain/model.safetensors",
        spec=f"{RUN}/pretrain/model.json",
        metrics=f"{RUN}/pretrain/metrics.json",
    log:
        f"{RUN}/logs/pretrain.log",
    benchmark:
        f"{RUN}/benchmarks/pretrain.tsv"
    params:
        command="pretrain",
        settings=PLAN.models["pretrain"].settings,
        code=code("pretrain"),
