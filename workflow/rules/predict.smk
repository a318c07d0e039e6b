# After the run: the chosen segmenter and the classifier as one model package, then
# applied to new images (predict.sheet) or to the run's own first test images.


rule export_model:
    input:
        # The headline is read from the summary; any segmenter may be the one exported.
        summary=f"{RUN}/summary.csv",
        classifier=f"{RUN}/classifier/model.safetensors",
        segmenters=PLAN.exported_models,
    output:
        directory(f"{RUN}/model"),
    log:
        f"{RUN}/logs/export_model.log",
    benchmark:
        f"{RUN}/benchmarks/export_model.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        code=code("export"),
    shell:
        f"{XAISEG} export {RUN} {PLAN.export_args} --out {{output}} > {{log}} 2>&1"


rule predict:
    input:
        model=f"{RUN}/model",
        sheet=PLAN.predict,
    output:
        directory(f"{RUN}/predict/part-{{part}}"),
    log:
        f"{RUN}/logs/predict_{{part}}.log",
    benchmark:
        f"{RUN}/benchmarks/predict_{{part}}.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    threads: THREADS
    resources:
        gpu=gpu_request,
    params:
        code=code("predict"),
    shell:
        f"{XAISEG} predict {{input.sheet}} --model {{input.model}} --out {{output}}"
        f" {PLAN.predict_args} --part {{wildcards.part}} {SETTINGS.predict.jobs}"
        " --threads {threads} > {log} 2>&1"


rule predict_join:
    input:
        expand(f"{RUN}/predict/part-{{part}}", part=range(SETTINGS.predict.jobs)),
    output:
        f"{RUN}/predict/predictions.tsv",
    log:
        f"{RUN}/logs/predict_join.log",
    benchmark:
        f"{RUN}/benchmarks/predict_join.tsv"
    conda:
        "../../envs/xaiseg.yaml"
    params:
        code=code("predict_join"),
    shell:
        f"{XAISEG} predict-join {{input}} --out {RUN}/predict > {{log}} 2>&1"
