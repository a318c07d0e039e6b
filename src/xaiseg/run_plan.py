"""The run plan, as nnU-Net's plans file: the validated settings turned into every job
of one run, each with its artifact folder, the files it reads and its own settings,
derived values included. Standard library only: the Snakefile builds it before the
first job and its rules are lookups into it; ``plan.json`` records it beside the
artifacts, and the end-of-run summary reads it from there."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xaiseg.settings import (
    LABEL_CHOICE,
    ClassifierSettings,
    FinetuneSettings,
    MaskSettings,
    RecipeJob,
    RecipeSettings,
    SegmenterSettings,
    WorkflowSettings,
    round_name,
    to_json,
)

# The segmenter kinds: trained on a recipe's pseudo-masks, on every ground-truth mask,
# or on a share of them (fine-tuned from a pseudo-mask segmenter, or from scratch); a
# count run's first stage, on pseudo-masks with its masks mixed in (finetune.mixed_views),
# is not scored: its fine-tuned U-Net is.
PSEUDO, SUPERVISED, FEW_MASK_ARMS = "pseudo", "supervised", ("finetune", "scratch")
MIXED = "mixed"

# The evaluation's files shown in the HTML report: output name -> (file under eval/, its
# caption in workflow/report/, the report's category).
REPORTED = {
    "html": ("summary.html", "summary", "Results"),
    "comparisons": ("comparisons.csv", "comparisons", "Results"),
    "saliency_metrics": ("saliency_metrics.csv", "saliency_metrics", "Saliency"),
    "figure": ("figures/overlays.png", "overlays", "Overlays"),
    "extremes": ("figures/overlays_best_median_worst.png", "overlays", "Overlays"),
    "roc": ("figures/classifier_roc.png", "classifier_roc", "Classifier"),
    "thresholds": ("figures/dice_vs_threshold.png", "dice_vs_threshold", "Saliency"),
    "sanity": ("figures/sanity.png", "sanity", "Saliency"),
}
CHOICE_READS = ("model.safetensors", "predictions")  # of each candidate segmenter
FEW_MASKS_FIGURE = ("figures/dice_vs_fraction.png", "dice_vs_fraction", "Few masks")


@dataclass(frozen=True)
class Job:
    """One artifact's job: its folder, the files it reads (by role) and its settings."""

    folder: str
    settings: str = ""  # the stage's settings as JSON (xaiseg.settings.to_json)
    inputs: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SegmenterJob(Job):
    kind: str = PSEUDO  # pseudo | supervised | finetune | scratch | mixed
    # Its row in the evaluation: ``source:model:predictions`` (evaluate.tables).
    evaluated: str = ""


@dataclass(frozen=True)
class RunPlan:
    run: str  # the run folder, results/<run>
    sheet: str  # the sample sheet preprocessing reads
    archives: list[str]  # extracted side by side into raw/
    dataset: str  # a layout's dataset folder (in the extracted archive, or as given)
    layout: str  # data.layout, the format of that folder
    shards_per_group: int | None  # run.group_size in whole shards; None: one job a stage
    shard_size: int  # images per shard
    sections: dict[str, str]  # stage section -> its settings JSON (one job per stage)
    models: dict[str, Job]  # classifier, counterfactual, pretrain
    # classifier.candidates' variants (0: the settings as written), each a job of its
    # own whose folder the classifier's job chooses from; empty without candidates.
    classifier_candidates: list[Job]
    maps: dict[str, Job]  # saliency map -> its job
    recipes: dict[str, Job]  # pseudo-mask recipe -> its job
    recipe_maps: list[str]  # the maps a recipe reads: those scored against ground truth
    segmenters: dict[str, SegmenterJob]  # folder name under segmenter/ -> its job
    explained: dict[str, list[str]]  # segmenter -> the maps that explain it
    exportable: list[str]  # the segmenters the model package may be made from
    # Recipe -> the segmenter folder of its U-Net, the candidates the label-only
    # criterion chooses DoLL's start from (finetune.pretrained: label_choice); or empty.
    label_choice: dict[str, str]
    # The sheet `predict` reads (the config's, or the run's own) and its options.
    predict: str
    predict_args: str
    export_args: str  # the segmenter the package is made from and the slicing axis

    def job_folder(self, stage: str, name: str) -> str:
        """A per-sample job's output: the artifact, or with group_size its shard group's
        folder (``{group}`` left for Snakemake; the join makes the artifact)."""
        if self.shards_per_group:
            return f"{self.run}/groups/{stage}/{name}/{{group}}"
        return f"{self.run}/{stage}/{name}"

    def model_outputs(self, name: str) -> dict[str, str]:
        """``model_files`` of a trained model's folder; predictions for the classifier."""
        return model_files(self.models[name].folder, with_predictions=name == "classifier")

    @property
    def candidate_trained(self) -> str:
        """The classifier job's flag when its candidates have jobs of their own."""
        return "--candidates-trained" if self.classifier_candidates else ""

    def group_folders(self, stage: str, name: str, shards: int) -> list[str]:
        """Every shard group's folder of an artifact of ``shards`` shards."""
        groups = range(group_count(shards, self.shards_per_group or max(1, shards)))
        return [self.job_folder(stage, name).format(group=g) for g in groups]

    def artifact_groups(self, stage: str, name: str, data: str | Path) -> list[str]:
        """Every shard group's folder of an artifact, counted from the data's index."""
        shards = json.loads(Path(data, "index.json").read_text())["shards"]
        return self.group_folders(stage, name, len(shards))

    def preprocess_groups(self, plan: str | Path) -> list[str]:
        """Every preprocessing group's folder, counted from the split sheet's rows."""
        rows = json.loads(Path(plan, "plan.json").read_text())["rows"]
        return self.group_folders("data", "shards", group_count(rows, self.shard_size))

    @property
    def exported_models(self) -> list[str]:
        """Every segmenter's weights the model package may be made from."""
        return [f"{self.segmenters[name].folder}/model.safetensors" for name in self.exportable]

    @property
    def label_choice_files(self) -> list[str]:
        """What the label choice reads: each candidate U-Net's weights and predictions."""
        return [f"{f}/{name}" for f in self.label_choice.values() for name in CHOICE_READS]

    @property
    def label_choice_args(self) -> str:
        return named_args(self.label_choice)

    @property
    def label_choice_masks(self) -> dict[str, str]:
        """Recipe -> its masks folder: the choice's masks are copied from one of them."""
        return {r: self.recipes[r].folder for r in self.label_choice}

    @property
    def label_choice_masks_args(self) -> str:
        return named_args(self.label_choice_masks)

    @property
    def sheet_args(self) -> str:
        """``xaiseg sheet``'s dataset folder and layout, and the archives it unpacks
        into ``raw/`` first, if any."""
        args = f"{shlex.quote(self.dataset)} --layout {self.layout}"
        if not self.archives:
            return args
        return f"{args} --extract {' '.join(map(shlex.quote, self.archives))} --into {self.run}/raw"

    @property
    def evaluated(self) -> list[str]:
        """Every scored thing: pseudo-masks and segmenters, as ``evaluate`` reads them."""
        rows = []
        for name, job in self.recipes.items():
            rows += [
                f"{name}:pseudo_mask:{job.folder}",
                self.segmenters[pseudo_segmenter(name)].evaluated,
            ]
        return rows + [job.evaluated for job in self.scored_segmenters if job.kind != PSEUDO]

    @property
    def scored_segmenters(self) -> list[SegmenterJob]:
        return [job for job in self.segmenters.values() if job.kind != MIXED]

    @property
    def scored(self) -> dict[str, list[str]]:
        """The evaluation's inputs: pseudo-masks, segmenters' predictions, recipe maps."""
        return {
            "masks": [job.folder for job in self.recipes.values()],
            "segmenters": [f"{job.folder}/predictions" for job in self.scored_segmenters],
            "saliency": [f"{self.run}/saliency/{m}" for m in self.recipe_maps],
        }

    @property
    def few_masks(self) -> bool:
        return any(job.kind in FEW_MASK_ARMS for job in self.segmenters.values())

    @property
    def has_counts(self) -> bool:
        """Runs on k masks (``segmenter.mask_count``), not on a share of them."""
        return any(
            job.kind in FEW_MASK_ARMS and json.loads(job.settings)["mask_count"]
            for job in self.segmenters.values()
        )

    @property
    def reported(self) -> dict[str, tuple[str, str, str]]:
        """The evaluation's report outputs: name -> (path, caption, category)."""
        shown = {**REPORTED, **({"few_figure": FEW_MASKS_FIGURE} if self.few_masks else {})}
        return {key: (f"{self.run}/eval/{file}", *rest) for key, (file, *rest) in shown.items()}

    def mask_sources(self, recipe: str) -> str:
        """What a recipe's masks are made from, as ``xaiseg masks`` reads it: its maps
        (``name=folder``), or a self-training round's previous segmenter."""
        inputs = self.recipes[recipe].inputs
        if inputs.get("saliency"):
            maps = [shlex.quote(f"{Path(m).name}={m}") for m in inputs["saliency"]]
            return "--saliency " + " ".join(maps)
        return f"--predictions {inputs['segmenter'][0]}"

    def segmenter_priority(self, name: str) -> int:
        """A mixed U-Net first: the longest job after the label choice, its count run's
        fine-tuning and the evaluation wait for it."""
        return int(self.segmenters[name].kind == MIXED)

    def segmenter_sources(self, name: str) -> str:
        """A segmenter's training masks (none: ground truth) and the classifier folder
        whose predictions gate it, as ``xaiseg train-segmenter`` reads them."""
        inputs = self.segmenters[name].inputs
        masks = [f"--masks {m}" for m in inputs.get("masks", [])]
        gate = [f"--classifier {self.run}/classifier"] if inputs["gate"] else []
        return " ".join(masks + gate)

    @property
    def evaluate_tables(self) -> dict[str, str]:
        """The evaluation's tables and pages (``summary`` copied up as the run's)."""
        few = {"few_table": "dice_vs_fraction.csv"} if self.few_masks else {}
        if self.has_counts:
            few["count_table"] = "dice_vs_count.csv"
        files = {"per_image": "per_image.csv", "summary": "summary.csv", **few}
        files |= {"markdown": "summary.md", "report": "report.md"}
        return {key: f"{self.run}/eval/{file}" for key, file in files.items()}

    @property
    def explain_reported(self) -> dict[str, tuple[str, str]]:
        """A segmenter's explanation in the report (``{name}`` left for Snakemake)."""
        folder = f"{self.run}/eval/explain/{{name}}"
        return {
            "figure": (f"{folder}/figure.png", "explain"),
            "saliency_metrics": (f"{folder}/saliency_metrics.csv", "saliency_metrics"),
        }

    @property
    def final_outputs(self) -> list[str]:
        run = self.run
        return [
            f"{run}/summary.csv",
            f"{run}/eval/summary.md",
            f"{run}/eval/report.md",
            f"{run}/eval/figures/overlays.png",
            f"{run}/classifier/metrics.json",
            # Every model too: a job killed after removing its old model is rerun even
            # when its predictions folder survived.
            f"{run}/classifier/model.safetensors",
            *[f"{job.folder}/model.safetensors" for job in self.segmenters.values()],
            *[f"{run}/eval/explain/{name}/figure.png" for name in self.explained],
            f"{run}/model",
            *([f"{run}/predict/predictions.tsv"] if self.predict else []),
        ]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    def write(self, path: str | Path) -> None:
        """``plan.json``, rewritten only when the plan changed (its time says when)."""
        path, text = Path(path), self.to_json() + "\n"
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".tmp").write_text(text)
            path.with_suffix(".tmp").replace(path)


def named_args(folders: dict[str, str]) -> str:
    """``name=folder`` arguments, quoted for the shell (the CLI's RECIPE=FOLDER)."""
    return " ".join(shlex.quote(f"{name}={folder}") for name, folder in folders.items())


def group_count(items: int, per_group: int) -> int:
    """How many groups ``items`` shards (or rows) make, ``per_group`` to a group."""
    return -(-items // per_group)


def pseudo_segmenter(recipe: str) -> str:
    """The folder name of the segmenter trained on a recipe's pseudo-masks."""
    return f"pseudo-{recipe}"


def run_plan(settings: WorkflowSettings) -> RunPlan:
    run = f"results/{settings.run.run}"
    group, archive = settings.run.group_size, settings.data.archive
    candidates = _classifier_candidates(settings, run)
    sections = ("demo", "layout", "preprocess", "faithfulness", "evaluate")
    return RunPlan(
        run=run,
        sheet=_sheet(settings, run),
        archives=[archive] if isinstance(archive, str) and archive else list(archive),
        dataset=f"{run}/raw/{settings.data.root}".rstrip("/")
        if settings.data.archive
        else settings.data.root,
        layout=settings.data.layout,
        shards_per_group=max(1, group // settings.preprocess.shard_size) if group else None,
        shard_size=settings.preprocess.shard_size,
        sections={name: to_json(getattr(settings, name)) for name in sections},
        models=_models(settings, run, candidates),
        classifier_candidates=candidates,
        maps=_maps(settings, run),
        recipes=_recipes(settings, run),
        recipe_maps=sorted({m for r in settings.masks.recipes for m in r.map_names}),
        segmenters=_segmenters(settings, run),
        explained=_explained(settings),
        exportable=_exportable(settings),
        label_choice=_label_choice(settings, run),
        **_predict(settings, run),
        export_args=_export_args(settings),
    )


def pretrained_weights(run: str, pretrained: str) -> str:
    """The weights DoLL's fine-tuning starts from: a recipe's U-Net, or the criterion's."""
    if pretrained == LABEL_CHOICE:
        return f"{run}/{LABEL_CHOICE}/model.safetensors"
    return f"{run}/segmenter/{pseudo_segmenter(pretrained)}/model.safetensors"


def pretrained_masks(run: str, pretrained: str) -> str:
    """The pseudo-masks of DoLL's start: a recipe's, or the criterion's recipe's."""
    if pretrained == LABEL_CHOICE:
        return f"{run}/{LABEL_CHOICE}/masks"
    return f"{run}/masks/{pretrained}"


def _label_choice(settings: WorkflowSettings, run: str) -> dict[str, str]:
    if settings.finetune.pretrained != LABEL_CHOICE:
        return {}
    return {r: f"{run}/segmenter/{pseudo_segmenter(r)}" for r in settings.masks.names()}


def _sheet(settings: WorkflowSettings, run: str) -> str:
    source = settings.data.source
    if source == "demo":
        return f"{run}/demo_data/sheet.tsv"
    return f"{run}/layout_sheet.tsv" if source == "layout" else settings.data.sheet


def _predict(settings: WorkflowSettings, run: str) -> dict[str, str]:
    """A sheet of new images, or the run's own first test images, paths resolved from
    the folder of the sheet the run read; with the command's options."""
    predict = settings.predict
    options = (
        f"--batch-size {predict.batch_size} --outputs {' '.join(predict.outputs)}"
        f" --privacy {settings.run.privacy} --device {settings.run.device}"
    )
    if predict.sheet or not predict.test_images:
        return {"predict": predict.sheet, "predict_args": options}
    root = shlex.quote(os.path.dirname(_sheet(settings, run)) or ".")
    rows = f"--split test --limit {predict.test_images} --sheet-root {root}"
    return {"predict": f"{run}/sheet.tsv", "predict_args": f"{rows} {options}"}


def _export_args(settings: WorkflowSettings) -> str:
    """The segmenter the model package is made from, and the axis volumes are sliced on."""
    axis = 2 if settings.layout.axis is None else settings.layout.axis
    return f"--segmenter {settings.predict.model} --slice-axis {axis}"


def _init(settings: WorkflowSettings, section: str, run: str) -> list[str]:
    """The weights file a training stage starts from (an input, so that a new file
    retrains it); ``pretrain`` is this run's self-supervised weights, ``classifier`` its
    classifier's."""
    path = getattr(settings, section).init_weights
    named = {"pretrain": f"{run}/pretrain/model.safetensors"}
    named["classifier"] = f"{run}/classifier/model.safetensors"
    return [named.get(path, path)] if path else []


def model_files(folder: str, with_predictions: bool = True) -> dict[str, str]:
    """A trained model's files by role; a classifier's predictions too (the gates and
    the label-only criterion read them)."""
    files = {"model": "model.safetensors", "spec": "model.json", "metrics": "metrics.json"}
    if with_predictions:
        files["predictions"] = "predictions.csv"
    return {role: f"{folder}/{file}" for role, file in files.items()}


def _classifier(settings: WorkflowSettings, run: str) -> ClassifierSettings:
    """The classifier's settings, a ``pretrain`` start named by its weights file."""
    classifier = settings.classifier
    if classifier.init_weights == "pretrain":
        return dataclasses.replace(classifier, init_weights=_init(settings, "classifier", run)[0])
    return classifier


def _segmenter(settings: WorkflowSettings, run: str) -> SegmenterSettings:
    """The segmenter's settings, a named start (``classifier``) by its weights file; one
    that starts from the classifier gets an encoder of the classifier's depth and
    options (its own options win)."""
    segmenter, classifier = settings.segmenter, settings.classifier
    init = _init(settings, "segmenter", run)
    resolved = dataclasses.replace(segmenter, init_weights=init[0] if init else None)
    if segmenter.init_weights != "classifier":
        return resolved
    depth = int(classifier.network.removeprefix("resnet"))
    options = {"depth": depth, **classifier.network_options, **segmenter.network_options}
    return dataclasses.replace(resolved, network_options=options)


def _classifier_candidates(settings: WorkflowSettings, run: str) -> list[Job]:
    """One job per variant when there are candidates: trained side by side, one core
    each, where one job trained them one after the other (lgg40: 46 min at one thread)."""
    variants = _classifier(settings, run).variants()
    if len(variants) == 1:
        return []
    init = {"init": _init(settings, "classifier", run)}
    return [
        Job(f"{run}/classifier/candidates/{k}", to_json(variant), init)
        for k, variant in enumerate(variants)
    ]


def _models(settings: WorkflowSettings, run: str, candidates: list[Job]) -> dict[str, Job]:
    """The trained models' jobs; with ``candidates`` the classifier's reads theirs."""
    classifier = _classifier(settings, run)
    pre = settings.pretrain
    # Pretraining learns the classifier's network where it names none.
    pre = dataclasses.replace(
        pre,
        network=pre.network or classifier.network,
        network_options=(
            classifier.network_options if pre.network_options is None else pre.network_options
        ),
    )
    trained = {
        "classifier": classifier,
        "counterfactual": settings.counterfactual,
        "pretrain": pre,
    }
    jobs = {
        name: Job(f"{run}/{name}", to_json(value), {"init": _init(settings, name, run)})
        for name, value in trained.items()
    }
    jobs["classifier"].inputs["candidates"] = [
        path for job in candidates for path in model_files(job.folder).values()
    ]
    return jobs


def _maps(settings: WorkflowSettings, run: str) -> dict[str, Job]:
    """Each map's job sees its own settings alone, so another map's edit leaves it be."""
    saliency = settings.saliency
    jobs = {}
    for name, spec in sorted(saliency.maps.items()):
        only = dataclasses.replace(saliency, maps={name: spec})
        model = [f"{run}/{spec.model}/model.safetensors"]
        jobs[name] = Job(f"{run}/saliency/{name}", to_json(only), {"model": model})
    return jobs


def _recipes(settings: WorkflowSettings, run: str) -> dict[str, Job]:
    """Each recipe's masks from its maps; each self-training round's from the previous
    round's segmenter's predictions (its job's recipe is only a name)."""
    masks = settings.masks
    jobs = {}
    for recipe in masks.recipes:
        saliency = [f"{run}/saliency/{m}" for m in recipe.map_names]
        jobs[recipe.name] = _recipe_job(run, recipe, masks, saliency=saliency)
        for k in range(1, masks.rounds_of(recipe) + 1):
            name, previous = round_name(recipe.name, k), round_name(recipe.name, k - 1)
            predictions = [f"{run}/segmenter/{pseudo_segmenter(previous)}/predictions"]
            only_name = RecipeSettings(name=name, maps=(), refine=())
            jobs[name] = _recipe_job(run, only_name, masks, segmenter=predictions)
    return jobs


def _recipe_job(run: str, recipe: RecipeSettings, masks: MaskSettings, **inputs: list[str]) -> Job:
    # A recipe's own masks do not depend on the rounds that follow them.
    job = RecipeJob(dataclasses.replace(recipe, rounds=None), masks.gate_threshold)
    return Job(f"{run}/masks/{recipe.name}", to_json(job), inputs)


def _segmenters(settings: WorkflowSettings, run: str) -> dict[str, SegmenterJob]:
    # `supervised` decides which jobs exist, not how one trains.
    base = dataclasses.replace(_segmenter(settings, run), supervised=True)
    init = [base.init_weights] if base.init_weights else []
    gated = settings.segmenter.gate_threshold is not None
    gate = [f"{run}/classifier/predictions.csv", f"{run}/classifier/metrics.json"]
    found = {}

    def add(name: str, kind: str, row: str, value: Any, **inputs: list[str]) -> SegmenterJob:
        inputs = {"init": init, "gate": gate if gated else [], **inputs}
        # A job that would train the very same U-Net as one already planned (scratch on
        # every train mask with the supervised seed) reads that one's folder: its row,
        # no second training.
        twin = [j for j in found.values() if (j.settings, j.inputs) == (to_json(value), inputs)]
        folder = twin[0].folder if twin else f"{run}/segmenter/{name}"
        found[name] = SegmenterJob(
            folder, to_json(value), inputs, kind, f"{row}:{folder}/predictions" if row else ""
        )
        return found[name]

    for recipe in settings.masks.names():
        masks = [f"{run}/masks/{recipe}"]
        add(pseudo_segmenter(recipe), PSEUDO, f"{recipe}:segmenter", base, masks=masks)
    if settings.segmenter.supervised:
        add(SUPERVISED, SUPERVISED, "ground_truth:supervised", base)
    pretrained = settings.finetune.pretrained
    if pretrained is None:
        return found
    weights = [pretrained_weights(run, pretrained)]
    mixed = _mixed_starts(settings, run, base, add)
    for arm in FEW_MASK_ARMS:
        source = pretrained if arm == "finetune" else "ground_truth"
        for draw, seed, changes in _mask_draws(settings.finetune, base.min_steps):
            start = mixed.get((draw, seed), weights) if arm == "finetune" else init
            start_weights = start[0] if start else None
            prior = settings.finetune.start_masks if arm == "finetune" else 0.0
            value = dataclasses.replace(
                base,
                mask_seed=seed,
                seed=seed,
                init_weights=start_weights,
                start_masks=prior,
                **changes,
            )
            row = f"{source}:{arm}/{draw}/{seed}"
            add(f"{arm}-{draw}-s{seed}", arm, row, value, init=start)
    return found


def _mixed_starts(
    settings: WorkflowSettings, run: str, base: SegmenterSettings, add: Any
) -> dict[tuple[str, int], list[str]]:
    """With ``finetune.mixed_views``, each count run's first stage (added to the plan):
    a U-Net on the pretrained recipe's pseudo-masks, the run's k masks in place of
    theirs and repeated; returns (draw, seed) -> its weights, the fine-tuning's start."""
    finetune = settings.finetune
    if not finetune.mixed_views:
        return {}
    masks = [pretrained_masks(run, finetune.pretrained or "")]
    starts = {}
    # As many optimiser steps as a recipe U-Net: with min_steps the repeats lengthen an
    # epoch, not the training (lgg40: 15 epochs of 98 batches, not 25; BUSI's epochs
    # were min_steps' already).
    epochs = 1 if base.min_steps else base.epochs
    for k, seed in finetune.count_runs():
        repeat = finetune.mixed_repeat(k)
        value = dataclasses.replace(
            base, mask_count=k, mask_seed=seed, seed=seed, mask_repeat=repeat, epochs=epochs
        )
        job = add(f"{MIXED}-k{k}-s{seed}", MIXED, "", value, masks=masks)
        starts[(f"k{k}", seed)] = [f"{job.folder}/model.safetensors"]
    return starts


def _mask_draws(finetune: FinetuneSettings, min_steps: int) -> list[tuple[str, int, dict]]:
    """DoLL's runs as (draw, seed, segmenter settings): a share of the train masks
    ("0.05") or a count of them ("k5")."""
    # A share trains as many epochs as all the masks would, not min_steps steps over a
    # few batches (hundreds of epochs).
    shares = [
        (f"{f:g}", s, {"mask_fraction": float(f), "min_steps": math.ceil(min_steps * f)})
        for f, s in finetune.runs()
    ]
    # A user's k masks: none left to choose the checkpoint with, so the last epoch is
    # kept; the epochs as set (a few batches each).
    counts = [
        (f"k{k}", s, {"mask_count": k, "min_steps": 0, "checkpoint": "last"})
        for k, s in finetune.count_runs()
    ]
    return shares + counts


def _explained(settings: WorkflowSettings) -> dict[str, list[str]]:
    """Segmenter name -> the maps that explain it (Seg-Grad-CAM and kin)."""
    found: dict[str, list[str]] = {}
    for name in sorted(settings.saliency.maps):
        segmenter = settings.saliency.maps[name].segmenter
        if segmenter is not None:
            found.setdefault(segmenter, []).append(name)
    return found


def _exportable(settings: WorkflowSettings) -> list[str]:
    """The one named, or every weak segmenter: the headline is known only once the
    summary is written."""
    if settings.predict.model != "headline":
        return [settings.predict.model]
    return [pseudo_segmenter(name) for name in settings.masks.names()]


def read_plan(run: str | Path) -> dict[str, Any]:
    """A run's ``plan.json`` as written, or {} before the first run."""
    path = Path(run) / "plan.json"
    return json.loads(path.read_text()) if path.is_file() else {}
