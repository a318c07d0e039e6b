"""The evaluation stage: per-image CSV, summary CSV and Markdown, report, overlay figure."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.artifacts import raw_maps
from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.criterion import (
    AGREEMENT,
    CRITERION,
    chosen_recipe,
    recipe_criterion,
    with_criterion,
)
from xaiseg.evaluate.few_masks import few_masks_rows
from xaiseg.evaluate.figures import dice_against_fraction_plot, overlay_grid, to_2d
from xaiseg.evaluate.headline import headline_recipe
from xaiseg.evaluate.label_choice import named_choice
from xaiseg.evaluate.per_image import gather_groups
from xaiseg.evaluate.report import render_report
from xaiseg.evaluate.report_figures import (
    classifier_roc,
    dice_against_threshold,
    placeholder,
    sanity_cascade,
)
from xaiseg.evaluate.saliency_metrics import per_image_localisation, summarise_localisation
from xaiseg.evaluate.tables import (
    ALL_MASKS,
    Evaluated,
    comparisons,
    dice_against_count,
    dice_against_fraction,
    per_image_table,
    summary_html,
    summary_table,
    to_markdown,
)
from xaiseg.masks.normalize import normalize_maps
from xaiseg.provenance import write_provenance, write_text
from xaiseg.settings import EvaluateSettings


def evaluate(
    data_dir: str | Path,
    things: Sequence[Evaluated],
    saliency_dirs: dict[str, Path],
    out_dir: str | Path,
    settings: EvaluateSettings,
    classifier_metrics: Path | None = None,
    faithfulness_dirs: dict[str, Path] | None = None,
    classifier_predictions: Path | None = None,
    group_parts: Sequence[Path] | None = None,
) -> pd.DataFrame:
    """``group_parts``: the folders of an evaluation run in shard groups
    (``xaiseg.evaluate.per_image``), whose per-image tables replace scoring here."""
    out = Path(out_dir)
    if group_parts:
        per_image, located = gather_groups(group_parts, things, list(saliency_dirs))
    else:
        per_image = per_image_table(data_dir, things)
        located = per_image_localisation(data_dir, saliency_dirs)
    criterion = _criterion(data_dir, things, settings.choice_tie)
    per_image = named_choice(per_image, chosen_recipe(criterion))
    summary = summary_table(per_image)
    few = few_masks_rows(per_image, summary, settings, data_dir, things, classifier_predictions,
                         label_recipe=chosen_recipe(criterion))  # fmt: skip
    summary = pd.concat([summary, few], ignore_index=True)
    summary = with_criterion(summary, criterion)
    warning = classifier_warning(classifier_metrics)
    summary["warning"] = ""
    if warning:
        print(f"WARNING: {warning}", flush=True)
        summary.loc[summary["setting"] != ALL_MASKS, "warning"] = warning
    write_text(out / "per_image.csv", per_image.to_csv(index=False))
    pairs = comparisons(per_image)
    write_text(out / "comparisons.csv", pairs.to_csv(index=False))
    localisation = with_faithfulness(
        summarise_localisation(located, saliency_dirs), faithfulness_dirs or {}
    )
    write_text(out / "saliency_metrics.csv", localisation.to_csv(index=False))
    report_figures(out / "figures", located, faithfulness_dirs or {}, classifier_predictions,
                   classifier_metrics, data_dir)  # fmt: skip
    write_text(out / "summary.csv", summary.to_csv(index=False))
    write_text(out / "summary.md", to_markdown(summary))
    write_text(out / "summary.html", summary_html(summary, localisation, pairs))
    report = render_report(Path(data_dir), summary, classifier_metrics, settings.choice_tie)
    write_text(out / "report.md", report)
    counted = dice_against_count(summary)
    if len(counted):
        write_text(out / "dice_vs_count.csv", counted.to_csv(index=False))
    few = dice_against_fraction(summary)
    if len(few):
        write_text(out / "dice_vs_fraction.csv", few.to_csv(index=False))
        dice_against_fraction_plot(
            out / "figures" / "dice_vs_fraction.png", few, _references(summary, few)
        )
    rows = figure_rows(per_image, settings)
    _figure(Path(data_dir), things, saliency_dirs, out / "figures" / "overlays.png", rows)
    extremes, titles = extreme_rows(per_image, summary)
    figure = out / "figures" / "overlays_best_median_worst.png"
    if extremes:
        _figure(Path(data_dir), things, saliency_dirs, figure, extremes, titles)
    else:
        why = "no test image with a lesion for the headline segmenter"
        placeholder(figure, "Best, median and worst test patients", why)
    write_provenance(
        out,
        stage="evaluate",
        params={"things": [f"{t.recipe}:{t.model}" for t in things], **asdict(settings)},
        inputs=[Path(data_dir) / "index.json", *[t.masks_dir / "index.json" for t in things]],
        seed=settings.seed,
    )
    return summary


def _criterion(data_dir: str | Path, things: Sequence[Evaluated], tie: float) -> pd.DataFrame:
    """The label-only criterion of every recipe that has a U-Net trained on its
    pseudo-masks; an empty table when none has."""
    predictions = {t.recipe: t.masks_dir for t in things if t.model == "segmenter"}
    if not predictions:
        return pd.DataFrame({"recipe": [], CRITERION: [], AGREEMENT: [], "label_choice": []})
    return recipe_criterion(data_dir, predictions, tie)


FAITHFULNESS_COLUMNS = (
    "deletion_auc", "insertion_auc", "sanity_spearman", "sanity_spearman_abs", "sanity_passed",
)  # fmt: skip


def with_faithfulness(table: pd.DataFrame, folders: dict[str, Path]) -> pd.DataFrame:
    """The faithfulness stage's numbers beside each map's test row (they are measured
    on test images); other rows leave them empty."""
    table = table.copy()
    for column in FAITHFULNESS_COLUMNS:
        table[column] = pd.Series(dtype=object if column == "sanity_passed" else float)
    for name, folder in folders.items():
        checks = json.loads((Path(folder) / "faithfulness.json").read_text())
        where = (table["map"] == name) & (table["split"] == "test")
        for column in FAITHFULNESS_COLUMNS:
            table.loc[where, column] = checks[column]
    return table


def _references(summary: pd.DataFrame, few: pd.DataFrame) -> dict[str, float]:
    """Test Dice of the pretrained recipe's segmenter (no masks) and of the supervised one."""
    test = summary[(summary["split"] == "test") & ~summary["setting"].str.startswith("few")]
    pretrained = few.loc[few["model"] == "finetune", "recipe"]
    found = {}
    for label, model, recipe in (
        ("no masks (pretrained alone)", "segmenter", pretrained.iloc[0] if len(pretrained) else ""),
        ("all masks (supervised)", "supervised", "ground_truth"),
    ):
        row = test[(test["model"] == model) & (test["recipe"] == recipe)]
        if len(row):
            found[label] = float(row["dice"].iloc[0])
    return found


def classifier_warning(classifier_metrics: Path | None) -> str:
    """The classifier stage's warning (a val AUC not clearly above chance), or ''."""
    if not classifier_metrics or not Path(classifier_metrics).is_file():
        return ""
    return json.loads(Path(classifier_metrics).read_text()).get("warning", "")


def figure_rows(per_image: pd.DataFrame, settings: EvaluateSettings) -> list[str]:
    """Test images with a lesion (else any), chosen by a seeded draw so reruns match."""
    ids = per_image.drop_duplicates("sample_id")
    test = ids[ids["split"] == "test"]
    pool = test[test["truth_positive"]] if test["truth_positive"].any() else test
    pool = pool if len(pool) else ids
    rng = np.random.default_rng(settings.seed)
    chosen = rng.choice(len(pool), size=min(settings.n_figure, len(pool)), replace=False)
    return sorted(pool["sample_id"].iloc[chosen].tolist())


def extreme_rows(per_image: pd.DataFrame, summary: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The best, median and worst test patients of the headline weak segmenter (the
    label-only choice, else the best val Dice without masks; the supervised one when
    there is none): for each, the image whose Dice is nearest its patient's mean.
    Titles name the patient and its Dice."""
    # The summary as the headline reads it back from summary.csv: one rule, one place.
    headline = headline_recipe(list(csv.DictReader(io.StringIO(summary.to_csv(index=False)))))
    recipe, model = (headline, "segmenter") if headline else ("ground_truth", "supervised")
    test = per_image[(per_image["split"] == "test") & per_image["truth_positive"]
                     & (per_image["recipe"] == recipe) & (per_image["model"] == model)]  # fmt: skip
    if test.empty:
        return [], []
    patients = test.groupby("group")["dice"].mean().sort_values()
    picks = {"worst": patients.index[0], "median": patients.index[len(patients) // 2],
             "best": patients.index[-1]}  # fmt: skip
    ids, titles = [], []
    for label, group in picks.items():
        images = test[test["group"] == group]
        nearest = (images["dice"] - patients[group]).abs().idxmin()
        ids.append(images.loc[nearest, "sample_id"])
        titles.append(f"{label}: {group}\n{recipe} Dice {patients[group]:.2f}")
    return ids, titles


def report_figures(
    folder: Path,
    located: pd.DataFrame,
    faithfulness_dirs: dict[str, Path],
    predictions: Path | None,
    metrics: Path | None,
    data_dir: str | Path,
) -> None:
    """The report's ROC, Dice-against-threshold and sanity figures (those with data)."""
    if predictions and metrics:
        finding = ShardStore(data_dir).index["classes"][-1]
        classifier_roc(predictions, metrics, finding, folder / "classifier_roc.png")
    else:
        placeholder(folder / "classifier_roc.png", "Classifier ROC", "no classifier given")
    if located.empty:
        why = "no image with a lesion in its ground truth"
        placeholder(folder / "dice_vs_threshold.png", "Dice against threshold", why)
    else:
        dice_against_threshold(located, folder / "dice_vs_threshold.png")
    cascades = {n: pd.read_csv(Path(f) / "randomisation.csv") for n, f in faithfulness_dirs.items()}
    if cascades:
        bar = json.loads((next(iter(faithfulness_dirs.values())) / "faithfulness.json").read_text())
        sanity_cascade(cascades, bar["max_spearman"], folder / "sanity.png")
    else:
        placeholder(folder / "sanity.png", "Randomisation sanity check", "no map was checked")


def _figure(
    data_dir: Path, things, saliency_dirs, path: Path, sample_ids: list[str], titles=None
) -> None:
    store = ShardStore(data_dir)
    rows = [store.sample_ids.index(s) for s in sample_ids]
    tensors = store.take(["image", "mask"], rows)
    truth = tensors["mask"][:, 0].numpy().astype(bool)
    # Volumes are drawn at the slice where the ground truth is largest.
    images, picks = to_2d(tensors["image"][:, 0].numpy(), truth)
    columns: dict[str, np.ndarray] = {}
    for name, folder in saliency_dirs.items():
        maps = ShardStore(folder).take(["map", "scale"], rows)
        columns[f"{name} map"] = to_2d(normalize_maps(raw_maps(maps)).numpy()[:, 0], truth, picks)[
            0
        ]
    for thing in things:
        heading = "supervised" if thing.model == "supervised" else f"{thing.recipe}\n{thing.model}"
        masks = ShardStore(thing.masks_dir).take(["mask"], rows)["mask"][:, 0].numpy() == 1
        columns[heading] = to_2d(masks, truth, picks)[0]
    truth_2d = to_2d(truth, truth, picks)[0]
    overlay_grid(path, images, truth_2d, columns, titles or sample_ids)
