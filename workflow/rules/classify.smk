# The trained models every pseudo-mask waits for: first when jobs queue for cores or
# GPUs (priority). A job given several GPUs trains data-parallel (launch).
TRAINERS = {"classifier": "train-classifier", "counterfactual": "train-counterfactual"}


for trained, job in PLAN.models.items():

    # Loop values reach the command through params only: the shell runs after the loop.
    # With classifier.candidates the classifier's job only chooses among the
    # candidates' jobs below (candidate_trained).
    rule:
        name:
            f"train_{trained}"
        input:
            data=f"{RUN}/data",
            init=job.inputs["init"],
            candidates=job.inputs.get("candidates", []),
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
            chooses=PLAN.candidate_trained if trained == "classifier" else "",
        shell:
            f"{XAISEG_TRAIN} {{params.command}} --data {{input.data}} --out {{params.out}}"
            " --settings {params.settings:q} {params.chooses} --threads {threads} > {log} 2>&1"


# Each of classifier.candidates' variants (k = 0: the settings as written) trained by a
# job of its own, side by side, into the classifier's candidates/<k>. Ahead of the
# counterfactual: every mask waits for the classifier, and the candidates are its
# longest jobs (lgg40, one thread: the counterfactual first put the dilated candidate
# 13.5 minutes later on the critical path).
rule train_classifier_candidate:
    input:
        data=f"{RUN}/data",
        init=PLAN.models["classifier"].inputs["init"],
    output:
        **model_files(f"{RUN}/classifier/candidates/{{k}}"),
    log:
        f"{RUN}/logs/train_classifier_candidate_{{k}}.log",
    benchmark:
        f"{RUN}/benchmarks/train_classifier_candidate_{{k}}.tsv"
    wildcard_constraints:
        k=r"\d+",
    priority: 3
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=gpu_request,
    params:
        launch=launch,
        out=lambda wc, output: os.path.dirname(output.model),
        settings=lambda wc: PLAN.classifier_candidates[int(wc.k)].settings,
        code=code("classifier"),
    shell:
        f"{XAISEG_TRAIN} train-classifier --data {{input.data}} --out {{params.out}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"
