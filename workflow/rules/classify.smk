# The trained models every pseudo-mask waits for: first when jobs queue for cores or
# GPUs (priority). A job given several GPUs trains data-parallel (launch).
TRAINERS = {"classifier": "train-classifier", "counterfactual": "train-counterfactual"}


for trained, job in PLAN.models.items():

    # Loop values reach the command through params only: the shell runs after the loop.
    rule:
        name:
            f"train_{trained}"
        input:
            data=f"{RUN}/data",
            init=job.inputs["init"],
        output:
            **PLAN.model_outputs(trained),
        log:
            f"{RUN}/logs/train_{trained}.log",
        benchmark:
            f"{RUN}/benchmarks/train_{trained}.tsv"
        priority: 2
        conda:
            "../../envs/xaiseg.yaml"
        threads: THREADS
        resources:
            gpu=gpu_request,
        params:
            launch=launch,
            command=TRAINERS.get(trained, trained),
            out=lambda wc, output: os.path.dirname(output.model),
            settings=job.settings,
            code=code(trained),
        shell:
            f"{XAISEG_TRAIN} {{params.command}} --data {{input.data}} --out {{params.out}}"
            " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
