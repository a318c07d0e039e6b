import dataclasses
import json
import shlex
import sys
from pathlib import Path

SRC = Path(workflow.basedir) / "src"
# The checkout's own package, first on the path: the Snakefile reads its settings and
# code hashes from the same files the jobs run.
sys.path.insert(0, str(SRC))

from xaiseg.codehash import stage_code_hash
from xaiseg.config_check import checked_settings
from xaiseg.runtimes import saliency_rates, stage_lines
from xaiseg.settings import ConfigError, RecipeJob, to_json

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"


def stop(message):
    """End the run before any job with the message alone: no stack, no schema dump."""
    print(f"xaiseg: {message}", file=sys.stderr)
    sys.exit(1)


try:
    SETTINGS = checked_settings(config, SCHEMA)
except ConfigError as err:
    stop(err)

RUN = f"results/{SETTINGS.run.run}"


def hold_run_folder():
    from xaiseg.errors import XaisegError
    from xaiseg.runlock import take_run_lock

    try:
        take_run_lock(RUN)
    except XaisegError as err:
        stop(err)


def release_run_folder():
    from xaiseg.runlock import drop_run_lock

    drop_run_lock(RUN)


def repair_run_folder():
    """A corrupt artifact (cut short, changed since its stage wrote it) is set aside
    under corrupt/ before the plan is made, so this run makes it again. Not while
    another run works in the folder, nor in a cluster job's own Snakemake."""
    from xaiseg.integrity import repair_at_start
    from xaiseg.runlock import held_by_another

    if workflow.is_main_process and not held_by_another(RUN):
        for line in repair_at_start(RUN):
            print(line, file=sys.stderr)


repair_run_folder()

THREADS = SETTINGS.run.threads
# Every job runs the package from this checkout, whatever environment runs the shell
# (the project's .venv, a --use-conda env, a cluster node): the code hashed into
# params.code is the code that runs. Doubled braces survive Snakemake's formatting.
XAISEG = f"PYTHONPATH={shlex.quote(str(SRC))}${{{{PYTHONPATH:+:$PYTHONPATH}}}} python -m xaiseg"
# Training rules: a job given several GPUs (resources gpu=N, as a profile's set-resources
# gives it) trains data-parallel, one torchrun process per GPU.
XAISEG_TRAIN = XAISEG.replace("python -m xaiseg", "{params.launch}")


def launch(wildcards, resources):
    gpus = int(getattr(resources, "gpu", 1) or 1)
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc_per_node {gpus} -m xaiseg"
    return "python -m xaiseg"


# Shard groups: saliency and pseudo-masks as one job per group of whole shards, joined.
GROUP_SHARDS = (
    max(1, SETTINGS.run.group_size // SETTINGS.preprocess.shard_size)
    if SETTINGS.run.group_size
    else None
)


# A per-sample job's log and benchmark suffix: its shard group's, with group_size.
GROUP_TAG = "_g{group}" if GROUP_SHARDS else ""


def job_folder(stage, name):
    """A per-sample job's output: the artifact itself, or with group_size its shard
    group's folder (the stage's join rule gathers the groups into the artifact)."""
    if GROUP_SHARDS:
        return f"{RUN}/groups/{stage}/{name}/{{group}}"
    return f"{RUN}/{stage}/{name}"


def group_flag(wildcards):
    return f"--group {wildcards.group} {GROUP_SHARDS}" if GROUP_SHARDS else ""


def group_parts(stage, name):
    """Every shard group's folder of an artifact, counted once preprocessing (a
    checkpoint) has run."""
    data = checkpoints.preprocess.get().output.data
    shards = len(json.loads(Path(data, "index.json").read_text())["shards"])
    groups = range(-(-shards // GROUP_SHARDS))
    return [job_folder(stage, name).format(group=g) for g in groups]


def plan_parts():
    """Every preprocessing group's folder, counted once the plan (a checkpoint) exists."""
    plan = checkpoints.preprocess_plan.get().output[0]
    rows = json.loads(Path(plan, "plan.json").read_text())["rows"]
    per_group = GROUP_SHARDS * SETTINGS.preprocess.shard_size
    groups = range(-(-rows // per_group))
    return [job_folder("data", "shards").format(group=g) for g in groups]


def code(stage):
    """Hash of every source file the stage's command imports (xaiseg.codehash)."""
    return stage_code_hash(stage, SRC)


def settings_json(section, **changes):
    value = getattr(SETTINGS, section)
    return to_json(dataclasses.replace(value, **changes) if changes else value)


def saliency_json(wildcards):
    """The saliency settings with this map only, so other maps' edits leave it alone."""
    maps = {wildcards.map: SETTINGS.saliency.maps[wildcards.map]}
    return to_json(dataclasses.replace(SETTINGS.saliency, maps=maps))


PRETRAINED = f"{RUN}/pretrain/model.safetensors"


def init_weights(section):
    """The local weights file a training stage starts from: an input, so a new file
    retrains it. ``pretrain`` is this run's self-supervised weights."""
    path = getattr(SETTINGS, section).init_weights
    if path == "pretrain":
        return [PRETRAINED]
    if path and not Path(path).is_file():
        stop(f"config {section}.init_weights: file {path!r} not found")
    return [path] if path else []


def classifier_json():
    if SETTINGS.classifier.init_weights == "pretrain":
        return settings_json("classifier", init_weights=PRETRAINED)
    return settings_json("classifier")


def pretrain_json():
    """The pretraining settings with the classifier's network where they name none."""
    pre, clf = SETTINGS.pretrain, SETTINGS.classifier
    options = (
        clf.network_options if pre.network_options is None else pre.network_options
    )
    return settings_json(
        "pretrain", network=pre.network or clf.network, network_options=options
    )


def segmenter_json():
    # `supervised` decides which jobs exist, not how one trains.
    return to_json(dataclasses.replace(SETTINGS.segmenter, supervised=True))


def segmenter_gate_inputs():
    """The classifier's outputs, when the segmenters' predictions are gated by it."""
    if SETTINGS.segmenter.gate_threshold is None:
        return []
    return [f"{RUN}/classifier/predictions.csv", f"{RUN}/classifier/metrics.json"]


def segmenter_gate_flag():
    gated = SETTINGS.segmenter.gate_threshold is not None
    return f"--classifier {RUN}/classifier" if gated else ""


def recipe_names():
    return [r.name for r in SETTINGS.masks.recipes]


def recipe_maps(wildcards):
    return SETTINGS.masks.recipe(wildcards.recipe).methods


def recipe_json(wildcards):
    recipe = SETTINGS.masks.recipe(wildcards.recipe)
    return to_json(RecipeJob(recipe, SETTINGS.masks.gate_threshold))


def map_names():
    return sorted({m for r in SETTINGS.masks.recipes for m in r.methods})


def explained_segmenters():
    """Segmenter name -> the maps that explain it (Seg-Grad-CAM and kin)."""
    found = {}
    for name in sorted(SETTINGS.saliency.maps):
        segmenter = SETTINGS.saliency.maps[name].segmenter
        if segmenter is not None:
            found.setdefault(segmenter, []).append(name)
    return found


def sheet_path():
    data = SETTINGS.data
    if data.source == "demo":
        return f"{RUN}/demo_data/sheet.tsv"
    if data.source == "layout":
        return f"{RUN}/layout_sheet.tsv"
    if not Path(data.sheet).is_file():
        stop(f"config data.sheet: sample sheet {data.sheet!r} does not exist")
    check_sheet_now(data.sheet)
    return data.sheet


def check_sheet_now(sheet):
    """Every problem of the sheet, before the first job: labels, ids, splits, paths
    outside the permitted folders, and (unless they are to be quarantined) missing
    files. Undecodable files can only be found by preprocessing."""
    from xaiseg.io.sheet import check_sheet, sheet_error

    pre = SETTINGS.preprocess
    _, problems = check_sheet(sheet, pre.classes, pre.roots, pre.finding)
    if pre.on_bad_input == "skip":
        problems = [p for p in problems if not p.quarantinable]
    if problems:
        strict = pre.privacy == "strict"
        stop(sheet_error(Path(sheet), problems, strict))


def archive_paths():
    archive = SETTINGS.data.archive
    return [archive] if isinstance(archive, str) and archive else list(archive)


def layout_root():
    """The dataset folder: inside the extracted archive, or as given."""
    data = SETTINGS.data
    if data.archive:
        return f"{RUN}/raw/{data.root}".rstrip("/")
    if not data.root or not Path(data.root).is_dir():
        stop(f"config data.root: dataset folder {data.root!r} does not exist")
    return data.root


def segmenter_names():
    names = [f"pseudo-{name}" for name in recipe_names()]
    names += ["supervised"] if SETTINGS.segmenter.supervised else []
    return names + list(finetune_runs())


def finetune_runs():
    """Folder name -> (arm, fraction, seed) of every DoLL segmenter."""
    ft = SETTINGS.finetune
    if ft.pretrained is None:
        return {}
    return {
        f"{arm}-{fraction:g}-s{seed}": (arm, fraction, seed)
        for arm in ("finetune", "scratch")
        for fraction, seed in ft.runs()
    }


def shown(caption, category, subcategory=None):
    """Where an output sits in the HTML report, and its caption (workflow/report/)."""
    where = {"caption": f"../report/{caption}.rst", "category": category}
    return where | ({"subcategory": subcategory} if subcategory else {})


def finetune_outputs():
    """The evaluation's Dice-against-masks table and plot, when DoLL runs."""
    if not finetune_runs():
        return {}
    return {
        "few_table": f"{RUN}/eval/dice_vs_fraction.csv",
        "few_figure": report(
            f"{RUN}/eval/figures/dice_vs_fraction.png",
            **shown("dice_vs_fraction", "Few masks"),
        ),
    }


def pretrained_weights(wildcards):
    if wildcards.arm == "finetune":
        return [
            f"{RUN}/segmenter/pseudo-{SETTINGS.finetune.pretrained}/model.safetensors"
        ]
    return init_weights("segmenter")


def finetune_json(wildcards, input):
    """The segmenter's settings with this run's mask share, seeds and start."""
    start = input.init[0] if input.init else None
    value = dataclasses.replace(
        SETTINGS.segmenter,
        supervised=True,
        mask_fraction=float(wildcards.fraction),
        mask_seed=int(wildcards.seed),
        seed=int(wildcards.seed),
        init_weights=start,
    )
    return to_json(value)


def evaluated_inputs(wildcards):
    """Every artifact scored against ground truth: pseudo-masks, segmenters, maps."""
    return {
        "masks": expand(f"{RUN}/masks/{{recipe}}", recipe=recipe_names()),
        "segmenters": expand(
            f"{RUN}/segmenter/{{name}}/predictions", name=segmenter_names()
        ),
        "saliency": expand(f"{RUN}/saliency/{{map}}", map=map_names()),
    }


def evaluated_things():
    things = []
    for name in recipe_names():
        things.append(f"{name}:pseudo_mask:{RUN}/masks/{name}")
        things.append(f"{name}:segmenter:{RUN}/segmenter/pseudo-{name}/predictions")
    if SETTINGS.segmenter.supervised:
        things.append(f"ground_truth:supervised:{RUN}/segmenter/supervised/predictions")
    for name, (arm, fraction, seed) in finetune_runs().items():
        source = SETTINGS.finetune.pretrained if arm == "finetune" else "ground_truth"
        folder = f"{RUN}/segmenter/{name}/predictions"
        things.append(f"{source}:{arm}/{fraction:g}/{seed}:{folder}")
    return things


def final_outputs():
    return [
        f"{RUN}/summary.csv",
        f"{RUN}/eval/summary.md",
        f"{RUN}/eval/report.md",
        f"{RUN}/eval/figures/overlays.png",
        f"{RUN}/classifier/metrics.json",
        # Every model too: a job killed after removing its old model is rerun even
        # when its predictions folder survived.
        f"{RUN}/classifier/model.safetensors",
        *[f"{RUN}/segmenter/{name}/model.safetensors" for name in segmenter_names()],
        *[f"{RUN}/eval/explain/{name}/figure.png" for name in explained_segmenters()],
        f"{RUN}/model",
        *([f"{RUN}/predict/predictions.tsv"] if predict_sheet() else []),
    ]


def exportable():
    """The segmenters export may be asked for: the one named, or every weak one and the
    supervised (the headline is known only once the summary is written)."""
    model = SETTINGS.predict.model
    if model != "headline":
        return [model]
    return [name for name in segmenter_names() if name.startswith("pseudo-")]


def predict_sheet():
    """The sheet predict reads: the config's, or the run's own (its test images)."""
    predict = SETTINGS.predict
    if predict.sheet:
        if not Path(predict.sheet).is_file():
            stop(f"config predict.sheet: {predict.sheet!r} does not exist")
        return predict.sheet
    return f"{RUN}/sheet.tsv" if predict.test_images else ""


def predict_rows():
    """The run's own sheet: its test rows, paths from the folder of the sheet it was."""
    predict = SETTINGS.predict
    if predict.sheet or not predict.test_images:
        return ""
    root = shlex.quote(os.path.dirname(sheet_path()) or ".")
    return f"--split test --limit {predict.test_images} --sheet-root {root}"


def headline():
    """What a person wants at the end of a run: the weak segmenter chosen on val, its
    test Dice with the patient interval, the supervised bound, and the report command.
    """
    import csv

    path = Path(f"{RUN}/summary.csv")
    if not path.is_file():
        return ""
    rows = list(csv.DictReader(path.open()))

    def pick(split, model, setting):
        found = [
            r
            for r in rows
            if r["split"] == split and r["model"] == model and r["setting"] == setting
        ]
        return max(found, key=lambda r: float(r["dice"] or 0)) if found else None

    lines = []
    chosen = pick("val", "segmenter", "no masks")
    if chosen:
        test = next(
            r
            for r in rows
            if r["split"] == "test"
            and r["recipe"] == chosen["recipe"]
            and r["model"] == "segmenter"
            and r["setting"] == "no masks"
        )
        lines.append(
            f"headline (best val, no masks): {chosen['recipe']} segmenter, test Dice"
            f" {float(test['dice']):.3f} (95% CI {float(test['dice_ci_low']):.3f} to"
            f" {float(test['dice_ci_high']):.3f}, patients resampled)"
        )
    labels = [
        r
        for r in rows
        if r["split"] == "test"
        and r["model"] == "segmenter"
        and r.get("label_choice") == "True"
    ]
    if labels:
        lines.append(
            "label-only choice (deletion drop on val; not yet the headline, see"
            f" docs/criterion.md): {labels[0]['recipe']} segmenter, test Dice"
            f" {float(labels[0]['dice']):.3f}"
        )
    supervised = pick("test", "supervised", "all masks")
    if supervised:
        lines.append(
            f"supervised (all masks): test Dice {float(supervised['dice']):.3f}"
        )
    if Path(f"{RUN}/model").is_dir():
        line = f"model package: {RUN}/model (xaiseg predict --model {RUN}/model SCANS --out OUT)"
        if predict_sheet():
            line += f"; predictions: {RUN}/predict/predictions.tsv"
        lines.append(line)
    lines.append(
        f"tables: {RUN}/summary.csv; report: snakemake --report {RUN}/report.html"
        " (make run writes it)"
    )
    stages = stage_lines(f"{RUN}/benchmarks")
    if stages:
        lines += [f"stages (jobs, wall time; {RUN}/benchmarks/):", *stages]
    rates = saliency_rates(f"{RUN}/saliency")
    if rates:
        lines += ["saliency computation (start-up excluded):", *rates]
    return "\n".join(lines)
