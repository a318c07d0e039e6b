rule saliency:
    input:
        data=f"{RUN}/data",
        model=lambda wc: f"{RUN}/{SETTINGS.saliency.maps[wc.map].model}/model.safetensors",
    output:
        directory(f"{RUN}/saliency/{{map}}"),
    log:
        f"{RUN}/logs/saliency_{{map}}.log",
    benchmark:
        f"{RUN}/benchmarks/saliency_{{map}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=1,
    params:
        model=lambda wc, input: os.path.dirname(input.model),
        settings=saliency_json,
        code=code("saliency"),
    shell:
        f"{XAISEG} saliency --data {{input.data}} --model {{params.model}} --out {{output}}"
        " --map {wildcards.map} --settings {params.settings:q} --threads {threads} > {log} 2>&1"
