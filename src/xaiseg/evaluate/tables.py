"""Per-image and summary tables of every evaluated thing against ground truth.

Rows are (recipe, model) pairs: ``pseudo_mask`` scores a recipe's pseudo-masks
themselves, ``segmenter`` the U-Net trained on them, ``supervised`` the same U-Net
trained on ground truth. ``dice``/``iou``/``hd95`` average over images whose ground
truth holds a lesion; ``dice_all`` also counts lesion-free images (1 when the
prediction is empty too), and ``false_positive_rate`` is the share of lesion-free
images with a non-empty prediction. ``dice_volume`` is per patient: the Dice of all a
patient's images of the split taken together (slices of a volume: the per-volume Dice
that LGG and BraTS results report), averaged over the patients with a lesion. Ignore
pixels of a pseudo-mask count as background here: what a user would get.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.headline import ALL_MASKS, NO_MASKS
from xaiseg.evaluate.uncertainty import bootstrap_mean, paired_difference
from xaiseg.metrics import segmentation_scores

SUMMARY_COLUMNS = [
    "recipe",
    "model",
    "setting",
    "fraction",
    "masks",
    "seed",
    "split",
    "n",
    "n_positive",
    "dice",
    "dice_ci_low",
    "dice_ci_high",
    "iou",
    "hd95",
    "dice_all",
    "dice_volume",
    "false_positive_rate",
]
# Pixel counts per image, summed per patient for the per-volume Dice.
COUNTS = ("intersection", "predicted_pixels", "truth_pixels")
# What each row was allowed to read before evaluation.


# Few ground-truth masks (DoLL): fine-tuned from a recipe's segmenter, or from scratch.
FEW_MASK_MODELS = ("finetune", "scratch")
FEW_MASK_RUN = ("fraction", "masks", "seed")  # what tells a few-masks model's runs apart
COUNT_COLUMNS = ("seed", "masks")  # floats in a table (NaN where none), shown as integers
MODEL_ORDER = {"pseudo_mask": 0, "segmenter": 1, "supervised": 2, "finetune": 3, "scratch": 4}


@dataclass(frozen=True)
class Evaluated:
    recipe: str
    model: str
    masks_dir: Path
    fraction: float | None = None  # share of the train masks (few-masks models)
    seed: int | None = None
    masks: int | None = None  # or how many train images with the finding kept theirs


def parse_evaluated(spec: str) -> Evaluated:
    """``recipe:model:folder`` as passed on the command line; a few-masks model reads
    ``finetune/<fraction>/<seed>`` or ``scratch/<fraction>/<seed>``, or ``k<count>``
    in place of the fraction (``segmenter.mask_count``)."""
    recipe, model, folder = spec.split(":", 2)
    model, *run = model.split("/")
    if run and run[0].startswith("k"):
        return Evaluated(recipe, model, Path(folder), seed=int(run[1]), masks=int(run[0][1:]))
    if run:
        return Evaluated(recipe, model, Path(folder), float(run[0]), int(run[1]))
    return Evaluated(recipe, model, Path(folder))


def per_image_table(
    data_dir: str | Path, things: Sequence[Evaluated], group: tuple[int, int] | None = None
) -> pd.DataFrame:
    """Scores of every thing on every image with ground truth (of shard group ``(number,
    shards_per_group)`` alone when given); streamed by shard."""
    store = ShardStore(data_dir)
    store = store.group(*group) if group else store
    frames = []
    for thing in things:
        predictions = ShardStore(thing.masks_dir)
        predictions = predictions.group(*group) if group else predictions
        for ids, (data, pred) in store.iter_joined(predictions):
            has_truth = data["has_mask"].bool()
            if not has_truth.any():
                continue
            kept = [i for i, keep in zip(ids, has_truth.tolist(), strict=True) if keep]
            predicted = pred["mask"][has_truth] == 1
            frames.append(_scores(kept, data["mask"][has_truth], predicted, thing))
    if not frames:  # no image with ground truth (a group of unannotated images)
        return pd.DataFrame()
    return _with_split(pd.concat(frames, ignore_index=True), store)


def score_images(
    ids: Sequence[str], truth, predicted, thing: Evaluated, store: ShardStore
) -> pd.DataFrame:
    """Per-image rows of ``thing`` as ``per_image_table`` makes them, for masks made
    here: ``truth`` (N, 1, *spatial) labels, ``predicted`` (N, 1, *spatial) bool."""
    import torch

    predicted = torch.as_tensor(np.asarray(predicted))
    return _with_split(_scores(list(ids), truth, predicted, thing), store)


def _scores(ids: list[str], truth, predicted, thing: Evaluated) -> pd.DataFrame:
    scores = segmentation_scores(predicted, truth)
    lesion = truth > 0
    scores |= {
        "intersection": (predicted & lesion).flatten(1).sum(1).numpy(),
        "predicted_pixels": predicted.flatten(1).sum(1).numpy(),
        "truth_pixels": lesion.flatten(1).sum(1).numpy(),
    }
    return pd.DataFrame(
        {
            "sample_id": ids,
            "recipe": thing.recipe,
            "model": thing.model,
            "fraction": np.nan if thing.fraction is None else thing.fraction,
            "masks": np.nan if thing.masks is None else thing.masks,
            "seed": np.nan if thing.seed is None else thing.seed,
            "truth_positive": (truth.flatten(1) > 0).any(1).numpy(),
            "pred_positive": predicted.flatten(1).any(1).numpy(),
            **scores,
        }
    )


def _with_split(table: pd.DataFrame, store: ShardStore) -> pd.DataFrame:
    meta = pd.DataFrame(store.samples)[["sample_id", "split", "group"]]
    return table.merge(meta, on="sample_id", how="left", validate="many_to_one")


def summary_table(per_image: pd.DataFrame) -> pd.DataFrame:
    rows = []
    keys = ["recipe", "model", "fraction", "masks", "seed", "split"]
    per_image = per_image.assign(**{k: per_image.get(k, np.nan) for k in FEW_MASK_RUN})
    for (recipe, model, fraction, masks, seed, split), group in per_image.groupby(
        keys, sort=False, dropna=False
    ):
        positive = group[group["truth_positive"]]
        negative = group[~group["truth_positive"]]
        rows.append(
            {
                "recipe": recipe,
                "model": model,
                "setting": _setting(model, fraction, masks),
                "fraction": fraction,
                "masks": masks,
                "seed": seed,
                "split": split,
                "n": len(group),
                "n_positive": len(positive),
                "dice": positive["dice"].mean(),
                **dict(zip(("dice_ci_low", "dice_ci_high"), _interval(positive), strict=True)),
                "iou": positive["iou"].mean(),
                "hd95": positive["hd95"].mean(),
                "dice_all": group["dice"].mean(),
                "dice_volume": volume_dice(group),
                "false_positive_rate": negative["pred_positive"].mean()
                if len(negative)
                else np.nan,
            }
        )
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    frame["_order"] = frame["model"].map(MODEL_ORDER)
    return (
        frame.sort_values(["split", "_order", "recipe", "fraction", "masks", "seed"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def volume_dice(images: pd.DataFrame) -> float:
    """Mean over patients (groups) with a lesion of 2 |P & T| / (|P| + |T|), the pixel
    counts summed over the patient's images; NaN for a table without the counts."""
    if not set(COUNTS) <= set(images) or "group" not in images:
        return np.nan
    totals = images.groupby("group")[list(COUNTS)].sum()
    totals = totals[totals["truth_pixels"] > 0]
    if totals.empty:
        return np.nan
    both = totals["predicted_pixels"] + totals["truth_pixels"]
    return float((2 * totals["intersection"] / both).mean())


def _interval(positive: pd.DataFrame) -> tuple[float, float]:
    """95% interval of the mean Dice over lesion images, resampling patients (groups)."""
    groups = positive["group"] if "group" in positive else positive["sample_id"]
    return bootstrap_mean(positive["dice"].to_numpy(), groups.to_numpy())


def comparisons(per_image: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Paired differences in Dice between every two weak or supervised rows (and each
    fine-tuned run against scratch on the same masks), on the same lesion images, with
    patient-bootstrap intervals: "A beats B" only when the interval excludes zero."""
    rows = per_image[(per_image["split"] == split) & per_image["truth_positive"]]
    rows = rows.assign(**{k: rows.get(k, np.nan) for k in FEW_MASK_RUN})
    key = rows["recipe"] + ":" + rows["model"]
    few = rows["model"].isin(FEW_MASK_MODELS)
    # A run's draw: its share of the masks (@0.05) or its count of them (@k5), and seed.
    drawn = (
        rows["fraction"]
        .map("@{:g}".format)
        .where(rows["masks"].isna(), rows["masks"].map("@k{:.0f}".format))
    )
    key[few] = key[few] + drawn[few] + rows.loc[few, "seed"].map("/s{:.0f}".format)
    table = rows.assign(key=key).pivot_table("dice", index=["sample_id", "group"], columns="key")
    names = list(table.columns)
    plain = [n for n in names if "@" not in n]
    pairs = [(a, b) for i, a in enumerate(plain) for b in plain[i + 1 :]]
    for name in names:  # a fine-tuned run against scratch on the same draw of masks
        _, _, run = name.partition(":finetune@")
        if run:
            pairs.append((name, f"ground_truth:scratch@{run}"))
    out = []
    groups = table.index.get_level_values("group").to_numpy()
    for a, b in pairs:
        if b not in table:
            continue
        both = table[[a, b]].notna().all(1).to_numpy()
        diff, low, high = paired_difference(table[a][both], table[b][both], groups[both])
        verdict = "no clear difference"
        if low > 0 or high < 0:
            verdict = f"{a if low > 0 else b} better"
        out.append({"a": a, "b": b, "n": int(both.sum()), "dice_a": table[a][both].mean(),
                    "dice_b": table[b][both].mean(), "difference": diff, "ci_low": low,
                    "ci_high": high, "verdict": verdict})  # fmt: skip
    return pd.DataFrame(out)


def _setting(model: str, fraction: float, masks: float = np.nan) -> str:
    if model in FEW_MASK_MODELS and not pd.isna(masks):
        return f"{masks:.0f} train masks"
    if model in FEW_MASK_MODELS:
        return f"{fraction:.0%} of train masks"
    return ALL_MASKS if model == "supervised" else NO_MASKS


def dice_against_fraction(summary: pd.DataFrame) -> pd.DataFrame:
    """Few-masks rows averaged over seeds: mean and standard deviation of the Dice per
    model, fraction and split (the standard deviation is empty for a single run). Runs
    sized in masks, not shares, are left out."""
    few = summary[summary["model"].isin(FEW_MASK_MODELS) & summary["fraction"].notna()]
    grouped = few.groupby(["split", "model", "recipe", "fraction"], sort=True)["dice"]
    table = grouped.agg(runs="count", dice_mean="mean", dice_sd="std").reset_index()
    return table


def dice_against_count(summary: pd.DataFrame) -> pd.DataFrame:
    """Runs on k masks (a user's annotated scans) averaged over their draws: mean and
    standard deviation of the Dice and the false-positive rate per model, count and
    split, and the mean Dice as a share of the supervised U-Net's on the same split."""
    few = summary[summary["model"].isin(FEW_MASK_MODELS) & summary["masks"].notna()]
    grouped = few.groupby(["split", "model", "recipe", "masks"], sort=True)
    table = grouped.agg(
        runs=("dice", "count"),
        dice_mean=("dice", "mean"),
        dice_sd=("dice", "std"),
        false_positive_rate=("false_positive_rate", "mean"),
    ).reset_index()
    supervised = summary[summary["model"] == "supervised"].groupby("split")["dice"].first()
    table["of_supervised"] = table["dice_mean"] / table["split"].map(supervised)
    return table


def summary_html(
    summary: pd.DataFrame,
    saliency: pd.DataFrame | None = None,
    pairs: pd.DataFrame | None = None,
) -> str:
    """The summary as one HTML page for the report: test rows first, numbers to three
    places, the classifier warning said once above the table rather than per row; then
    the saliency metrics (a map that fails the sanity check flagged) and the paired
    recipe comparisons, when given."""
    order = {"test": 0, "val": 1, "train": 2}
    shown = summary.sort_values("split", key=lambda s: s.map(order), kind="stable")
    warnings = sorted({w for w in shown.get("warning", []) if isinstance(w, str) and w})
    shown = shown.drop(columns=["warning"], errors="ignore")
    for count in COUNT_COLUMNS:  # counts, not measurements: no decimals, blank when none
        if count in shown:
            shown[count] = shown[count].map(lambda v: "" if pd.isna(v) else str(int(v)))
    table = shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3f}")
    note = "".join(f"<p><b>Warning:</b> {w}</p>" for w in warnings)
    style = (
        "body{font-family:sans-serif;font-size:12px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;white-space:nowrap}"
    )
    sections = [f"<h3>Summary</h3>{note}{table}"]
    if saliency is not None and len(saliency):
        sections.append(f"<h3>Saliency metrics</h3>{_sanity_note(saliency)}{_html(saliency)}")
    if pairs is not None and len(pairs):
        sections.append(f"<h3>Recipe comparisons (paired, patients resampled)</h3>{_html(pairs)}")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>xaiseg summary</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )


def _html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3f}")


def _sanity_note(saliency: pd.DataFrame) -> str:
    """The maps that failed the randomisation check, named above their table."""
    if "sanity_passed" not in saliency:
        return ""
    failed = saliency.loc[saliency["sanity_passed"] == False, "map"]  # noqa: E712 (NaN: not run)
    names = ", ".join(sorted(set(failed)))
    if not names:
        return ""
    return (
        f"<p><b>Failed the sanity check:</b> {names} (its map barely changes when the "
        "model's weights are randomised; it does not explain this model)</p>"
    )


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-style table without extra dependencies (pandas needs tabulate)."""
    shown = frame.copy()
    for column in shown.select_dtypes("number").columns:
        shape = "{:.0f}" if column in COUNT_COLUMNS else "{:.3f}"
        if column not in ("n", "n_positive"):
            shown[column] = shown[column].map(lambda v, f=shape: "" if pd.isna(v) else f.format(v))
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
