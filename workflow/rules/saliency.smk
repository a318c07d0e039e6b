if GROUP_SHARDS:

    rule saliency_group:
        input:
            data=f"{RUN}/data",
            model=lambda wc: f"{RUN}/{SETTINGS.saliency.maps[wc.map].model}/model.safetensors",
        output:
            directory(f"{RUN}/groups/saliency/{{map}}/{{group}}"),
        log:
            f"{RUN}/logs/saliency_{{map}}_g{{group}}.log",
        benchmark:
            f"{RUN}/benchmarks/saliency_{{map}}_g{{group}}.tsv"
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
            " --map {wildcards.map} --settings {params.settings:q} --threads {threads}"
            f" --group {{wildcards.group}} {GROUP_SHARDS} > {{log}} 2>&1"

    rule saliency:
        input:
            data=f"{RUN}/data",
            parts=lambda wc: [
                f"{RUN}/groups/saliency/{wc.map}/{g}" for g in shard_group_numbers()
            ],
        output:
            directory(f"{RUN}/saliency/{{map}}"),
        log:
            f"{RUN}/logs/join_saliency_{{map}}.log",
        benchmark:
            f"{RUN}/benchmarks/join_saliency_{{map}}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            code=code("join"),
        shell:
            f"{XAISEG} join --data {{input.data}} --parts {{input.parts}} --out {{output}}"
            " > {log} 2>&1"

else:

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
