if GROUP_SHARDS:

    rule pseudo_masks_group:
        input:
            data=f"{RUN}/data",
            saliency=lambda wc: [f"{RUN}/saliency/{m}" for m in recipe_maps(wc)],
            predictions=f"{RUN}/classifier/predictions.csv",
            metrics=f"{RUN}/classifier/metrics.json",
        output:
            directory(f"{RUN}/groups/masks/{{recipe}}/{{group}}"),
        log:
            f"{RUN}/logs/masks_{{recipe}}_g{{group}}.log",
        benchmark:
            f"{RUN}/benchmarks/masks_{{recipe}}_g{{group}}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            maps=lambda wc: [f"{m}={RUN}/saliency/{m}" for m in recipe_maps(wc)],
            classifier=lambda wc, input: os.path.dirname(input.predictions),
            settings=recipe_json,
            code=code("masks"),
        shell:
            f"{XAISEG} masks --data {{input.data}} --saliency {{params.maps:q}}"
            " --classifier {params.classifier} --out {output}"
            " --settings {params.settings:q}"
            f" --group {{wildcards.group}} {GROUP_SHARDS} > {{log}} 2>&1"

    rule pseudo_masks:
        input:
            data=f"{RUN}/data",
            parts=lambda wc: [
                f"{RUN}/groups/masks/{wc.recipe}/{g}" for g in shard_group_numbers()
            ],
        output:
            directory(f"{RUN}/masks/{{recipe}}"),
        log:
            f"{RUN}/logs/join_masks_{{recipe}}.log",
        benchmark:
            f"{RUN}/benchmarks/join_masks_{{recipe}}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            code=code("join"),
        shell:
            f"{XAISEG} join --data {{input.data}} --parts {{input.parts}} --out {{output}}"
            " > {log} 2>&1"

else:

    rule pseudo_masks:
        input:
            data=f"{RUN}/data",
            saliency=lambda wc: [f"{RUN}/saliency/{m}" for m in recipe_maps(wc)],
            predictions=f"{RUN}/classifier/predictions.csv",
            metrics=f"{RUN}/classifier/metrics.json",
        output:
            directory(f"{RUN}/masks/{{recipe}}"),
        log:
            f"{RUN}/logs/masks_{{recipe}}.log",
        benchmark:
            f"{RUN}/benchmarks/masks_{{recipe}}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            maps=lambda wc: [f"{m}={RUN}/saliency/{m}" for m in recipe_maps(wc)],
            classifier=lambda wc, input: os.path.dirname(input.predictions),
            settings=recipe_json,
            code=code("masks"),
        shell:
            f"{XAISEG} masks --data {{input.data}} --saliency {{params.maps:q}}"
            " --classifier {params.classifier} --out {output}"
            " --settings {params.settings:q} > {log} 2>&1"
