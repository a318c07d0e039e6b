rule demo_data:
    output:
        sheet=f"{RUN}/demo_data/sheet.tsv",
        images=directory(f"{RUN}/demo_data/images"),
        masks=directory(f"{RUN}/demo_data/masks"),
    log:
        f"{RUN}/logs/demo_data.log",
    benchmark:
        f"{RUN}/benchmarks/demo_data.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        settings=PLAN.sections["demo"],
        code=code("demo"),
    shell:
        f"{XAISEG} demo-data --out {RUN}/demo_data --settings {{params.settings:q}} > {{log}} 2>&1"


if GROUP_SHARDS:

    # The sheet checked and split once; preprocessing groups are counted from it.
    checkpoint preprocess_plan:
        input:
            sheet=PLAN.sheet,
        output:
            directory(f"{RUN}/plan"),
        log:
            f"{RUN}/logs/preprocess_plan.log",
        benchmark:
            f"{RUN}/benchmarks/preprocess_plan.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        params:
            settings=PLAN.sections["preprocess"],
            code=code("preprocess_plan"),
        shell:
            f"{XAISEG} preprocess-plan --sheet {{input.sheet:q}} --out {{output}}"
            " --settings {params.settings:q} > {log} 2>&1"

    rule preprocess_group:
        input:
            plan=f"{RUN}/plan",
            sheet=PLAN.sheet,
        output:
            directory(PLAN.job_folder("data", "shards")),
        log:
            f"{RUN}/logs/preprocess{GROUP_TAG}.log",
        benchmark:
            f"{RUN}/benchmarks/preprocess{GROUP_TAG}.tsv"
        conda:
            "../../envs/xaiseg.yaml"
        threads: 8
        params:
            settings=PLAN.sections["preprocess"],
            code=code("preprocess"),
        shell:
            f"{XAISEG} preprocess --plan {{input.plan}} --sheet {{input.sheet:q}} --out {{output}}"
            f" {GROUP_ARG}"
            " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


# A checkpoint: shard groups are counted from its index (group_parts). With group_size
# it joins the groups' shards (preprocess_group) instead of decoding the sheet.
checkpoint preprocess:
    input:
        sheet=PLAN.sheet,
        plan=f"{RUN}/plan" if GROUP_SHARDS else [],
        parts=lambda wc: plan_parts() if GROUP_SHARDS else [],
    output:
        data=directory(f"{RUN}/data"),
        sheet=f"{RUN}/sheet.tsv",
        quarantine=f"{RUN}/quarantine.tsv",
    log:
        f"{RUN}/logs/preprocess.log",
    benchmark:
        f"{RUN}/benchmarks/preprocess.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: 1 if GROUP_SHARDS else 8
    params:
        join=f"--plan {RUN}/plan --parts" if GROUP_SHARDS else "",
        settings=PLAN.sections["preprocess"],
        code=code("preprocess_join" if GROUP_SHARDS else "preprocess"),
    shell:
        f"{XAISEG} preprocess --sheet {{input.sheet:q}} --out {RUN} {{params.join}} {{input.parts}}"
        " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


# With data.archive: the archives unpacked side by side into raw/, the root inside.
rule layout_sheet:
    input:
        archives=PLAN.archives,
    output:
        **({"raw": directory(f"{RUN}/raw")} if PLAN.archives else {}),
        sheet=f"{RUN}/layout_sheet.tsv",
    log:
        f"{RUN}/logs/layout_sheet.log",
    benchmark:
        f"{RUN}/benchmarks/layout_sheet.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        settings=PLAN.sections["layout"],
        code=code("layout"),
    shell:
        f"{XAISEG} sheet {PLAN.sheet_args} --out {{output.sheet}}"
        " --settings {params.settings:q} > {log} 2>&1"
