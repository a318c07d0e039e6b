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
        seed=config["seed"],
        code=code_hash("preprocess"),
    shell:
        "python -m xaiseg preprocess --sheet {input.sheet:q} --out {params.out}"
        " --classes {params.classes:q} --image-size {params.cfg[image_size]}"
        " --channels {params.cfg[channels]} --val-fraction {params.cfg[val_fraction]}"
        " --test-fraction {params.cfg[test_fraction]} --shard-size {params.cfg[shard_size]}"
        " --on-bad-input {params.cfg[on_bad_input]}"
        " --mask-size-mismatch {params.cfg[mask_size_mismatch]}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"
