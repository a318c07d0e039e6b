rule train_segmenter_pseudo:
    input:
        data=f"{RUN}/data",
        init=init_weights("segmenter"),
        masks=f"{RUN}/masks/{{recipe}}",
        gate=segmenter_gate_inputs(),
    output:
        model=f"{RUN}/segmenter/pseudo-{{recipe}}/model.safetensors",
        metrics=f"{RUN}/segmenter/pseudo-{{recipe}}/metrics.json",
        predictions=directory(f"{RUN}/segmenter/pseudo-{{recipe}}/predictions"),
    log:
        f"{RUN}/logs/segmenter_pseudo-{{recipe}}.log",
    benchmark:
        f"{RUN}/benchmarks/segmenter_pseudo-{{recipe}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=segmenter_json(),
        gate=segmenter_gate_flag(),
        code=code("segmenter"),
    shell:
        f"{XAISEG_TRAIN} train-segmenter --data {{input.data}} --masks {{input.masks}}"
        " --out {params.out} {params.gate} --settings {params.settings:q} --threads {threads}"
        " > {log} 2>&1"


rule train_segmenter_supervised:
    input:
        data=f"{RUN}/data",
        init=init_weights("segmenter"),
        gate=segmenter_gate_inputs(),
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
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=segmenter_json(),
        gate=segmenter_gate_flag(),
        code=code("segmenter"),
    shell:
        f"{XAISEG_TRAIN} train-segmenter --data {{input.data}} --out {{params.out}} {{params.gate}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


rule train_segmenter_finetune:
    input:
        data=f"{RUN}/data",
        init=pretrained_weights,
        gate=segmenter_gate_inputs(),
    output:
        model=f"{RUN}/segmenter/{{arm}}-{{fraction}}-s{{seed}}/model.safetensors",
        metrics=f"{RUN}/segmenter/{{arm}}-{{fraction}}-s{{seed}}/metrics.json",
        predictions=directory(
            f"{RUN}/segmenter/{{arm}}-{{fraction}}-s{{seed}}/predictions"
        ),
    log:
        f"{RUN}/logs/segmenter_{{arm}}-{{fraction}}-s{{seed}}.log",
    benchmark:
        f"{RUN}/benchmarks/segmenter_{{arm}}-{{fraction}}-s{{seed}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=finetune_json,
        gate=segmenter_gate_flag(),
        code=code("segmenter"),
    shell:
        f"{XAISEG_TRAIN} train-segmenter --data {{input.data}} --out {{params.out}} {{params.gate}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
