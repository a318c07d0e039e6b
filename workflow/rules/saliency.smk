rule saliency:
    input:
        data=f"{RUN}/data",
        model=lambda wc: PLAN.maps[wc.map].inputs["model"],
    output:
        directory(PLAN.job_folder("saliency", "{map}")),
    log:
        f"{RUN}/logs/saliency_{{map}}{GROUP_TAG}.log",
    benchmark:
        f"{RUN}/benchmarks/saliency_{{map}}{GROUP_TAG}.tsv"
    # On the way to every pseudo-mask: first when jobs queue for cores or GPUs.
    priority: 1
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=gpu_request,
    params:
        model=lambda wc, input: os.path.dirname(input.model[0]),
        settings=lambda wc: PLAN.maps[wc.map].settings,
        code=code("saliency"),
    shell:
        f"{XAISEG} saliency --data {{input.data}} --model {{params.model}} --out {{output}}"
        " --map {wildcards.map} --settings {params.settings:q} --threads {threads}"
        f" {GROUP_ARG} > {{log}} 2>&1"


if GROUP_SHARDS:

    # Every per-sample artifact made in shard groups: its groups' folders, joined.
    rule join:
        input:
            data=f"{RUN}/data",
            parts=lambda wc: group_parts(wc.stage, wc.name),
        output:
            directory(f"{RUN}/{{stage}}/{{name}}"),
        log:
            f"{RUN}/logs/join_{{stage}}_{{name}}.log",
        benchmark:
            f"{RUN}/benchmarks/join_{{stage}}_{{name}}.tsv"
        wildcard_constraints:
            stage="saliency|masks",
        conda:
            "../../envs/xaiseg.yaml"
        params:
            code=code("join"),
        shell:
            f"{XAISEG} join --data {{input.data}} --parts {{input.parts}} --out {{output}}"
            " > {log} 2>&1"
