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
        out=lambda wc, output: os.path.dirname(output.sheet),
        settings=PLAN.sections["demo"],
        code=code("demo"),
    shell:
        f"{XAISEG} demo-data --out {{params.out}} --settings {{params.settings:q}} > {{log}} 2>&1"


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
            group=group_flag,
            settings=PLAN.sections["preprocess"],
            code=code("preprocess"),
        shell:
            f"{XAISEG} preprocess --plan {{input.plan}} --sheet {{input.sheet:q}} --out {{output}}"
            " {params.group}"
            " --settings {params.settings:q} --threads {threads} > {log} 2>&1"

    # The groups' shards joined into the data artifact; a checkpoint, as below.
    checkpoint preprocess:
        input:
            plan=f"{RUN}/plan",
            sheet=PLAN.sheet,
            parts=lambda wc: plan_parts(),
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
        params:
            out=lambda wc, output: os.path.dirname(output.sheet),
            settings=PLAN.sections["preprocess"],
            code=code("preprocess_join"),
        shell:
            f"{XAISEG} preprocess-join --plan {{input.plan}} --sheet {{input.sheet:q}}"
            " --parts {input.parts}"
            " --out {params.out} --settings {params.settings:q} > {log} 2>&1"

else:

    # A checkpoint: shard groups are counted from its index (group_parts).
    checkpoint preprocess:
        input:
            sheet=PLAN.sheet,
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
        threads: 8
        params:
            out=lambda wc, output: os.path.dirname(output.sheet),
            settings=PLAN.sections["preprocess"],
            code=code("preprocess"),
        shell:
            f"{XAISEG} preprocess --sheet {{input.sheet:q}} --out {{params.out}}"
            " --settings {params.settings:q} --threads {threads} > {log} 2>&1"


rule extract_archive:
    input:
        PLAN.archives,
    output:
        directory(f"{RUN}/raw"),
    log:
        f"{RUN}/logs/extract_archive.log",
    benchmark:
        f"{RUN}/benchmarks/extract_archive.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    shell:
        '(mkdir -p {output} && for a in {input:q}; do tar -xf "$a" -C {output}; done) > {log} 2>&1'


rule layout_sheet:
    input:
        raw=f"{RUN}/raw" if SETTINGS.data.archive else [],
    output:
        f"{RUN}/layout_sheet.tsv",
    log:
        f"{RUN}/logs/layout_sheet.log",
    benchmark:
        f"{RUN}/benchmarks/layout_sheet.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        root=PLAN.dataset,
        layout=SETTINGS.data.layout,
        settings=PLAN.sections["layout"],
        code=code("layout"),
    shell:
        f"{XAISEG} sheet {{params.root:q}} --layout {{params.layout}} --out {{output}}"
        " --settings {params.settings:q} > {log} 2>&1"
