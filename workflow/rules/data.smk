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
        demo=config["data"]["demo"],
        seed=config["seed"],
        code=code_hash("demo"),
    shell:
        "python -m xaiseg demo-data --out {params.out}"
        " --n-images {params.demo[n_images]} --size {params.demo[size]}"
        " --positive-fraction {params.demo[positive_fraction]}"
        " --images-per-patient {params.demo[images_per_patient]}"
        " --seed {params.seed} > {log} 2>&1"


rule preprocess:
    input:
        sheet=sheet_path(),
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
        classes=config["data"]["classes"],
        cfg=config["preprocess"],
        window=as_json(config["preprocess"]["dicom_window"]),
        seed=config["seed"],
        code=code_hash("preprocess"),
    shell:
        "python -m xaiseg preprocess --sheet {input.sheet:q} --out {params.out}"
        " --classes {params.classes:q} --image-size {params.cfg[image_size]}"
        " --channels {params.cfg[channels]} --val-fraction {params.cfg[val_fraction]}"
        " --test-fraction {params.cfg[test_fraction]} --shard-size {params.cfg[shard_size]}"
        " --on-bad-input {params.cfg[on_bad_input]}"
        " --mask-size-mismatch {params.cfg[mask_size_mismatch]}"
        " --dicom-window {params.window:q}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"


rule extract_archive:
    input:
        config["data"].get("archive") or [],
    output:
        directory(f"{RUN}/raw"),
    log:
        f"{RUN}/logs/extract_archive.log",
    benchmark:
        f"{RUN}/benchmarks/extract_archive.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    shell:
        "(mkdir -p {output} && tar -xf {input:q} -C {output}) > {log} 2>&1"


rule layout_sheet:
    input:
        raw=f"{RUN}/raw" if config["data"].get("archive") else [],
    output:
        f"{RUN}/layout_sheet.tsv",
    log:
        f"{RUN}/logs/layout_sheet.log",
    benchmark:
        f"{RUN}/benchmarks/layout_sheet.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        root=layout_root() if config["data"]["source"] == "layout" else "",
        layout=config["data"].get("layout", ""),
        negative=config["data"]["negative"],
        positive=config["data"]["positive"],
        axis=config["data"]["axis"],
        code=code_hash("preprocess"),
    shell:
        "python -m xaiseg sheet {params.root:q} --layout {params.layout} --out {output}"
        " --negative {params.negative:q} --positive {params.positive:q}"
        " --axis {params.axis} > {log} 2>&1"
