"""The few-masks setting: ``k`` val images with masks, drawn with a seed, choose how a
weak U-Net's predictions are read: the probability cut and a refinement (from the
U-Net's own output, stored in half precision); the choice is then scored on test. No
network ever sees those masks: they only choose among what the run already made.

Which recipe's U-Net is read is the label-only criterion's choice when it made one:
five masks rank recipes worse than the labels of every val image do (held-out val,
docs/criterion.md). Without a label choice the masks choose the recipe too.
Pseudo-mask rows choose the recipe only (their thresholds live in the recipes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.artifacts import read_probabilities
from xaiseg.data.shards import ShardStore
from xaiseg.errors import XaisegError
from xaiseg.evaluate.tables import Evaluated, score_images, summary_table
from xaiseg.masks.refine import REFINERS
from xaiseg.settings import EvaluateSettings, RefineStepSettings


@dataclass(frozen=True)
class Variant:
    """A segmenter's predictions read at ``cut``, then refined by ``refine`` (or not)."""

    cut: float = 0.5
    refine: RefineStepSettings | None = None

    @property
    def label(self) -> str:
        if self.refine is None:
            return f"cut {self.cut:g}"
        options = ", ".join(f"{k} {v}" for k, v in sorted(self.refine.options.items()))
        return f"cut {self.cut:g}, {self.refine.step}" + (f" ({options})" if options else "")

    def masks(self, probability: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Bool masks (N, *spatial) of probabilities (N, *spatial); ``keep``: the gate."""
        masks = (probability >= self.cut) & keep.reshape(-1, *[1] * (probability.ndim - 1))
        if self.refine is None:
            return masks
        step = REFINERS[self.refine.step](**self.refine.options)
        return np.stack([step(m, p, p[None]) for m, p in zip(masks, probability, strict=True)])


def variants(settings: EvaluateSettings) -> list[Variant]:
    """Every cut with and without each refinement; the stored reading (0.5) first, so
    that ties keep it."""
    cuts = sorted(set(settings.few_mask_cuts), key=lambda c: (c != 0.5, c))
    steps = [None, *settings.few_mask_refine]
    return [Variant(cut, step) for step in steps for cut in cuts]


def drawn_images(per_image: pd.DataFrame, k: int, seed: int) -> list[str]:
    """``k`` val images with a lesion, a seeded draw (all of them when fewer)."""
    val = per_image[(per_image["split"] == "val") & per_image["truth_positive"]]
    ids = sorted(val["sample_id"].unique())
    if k <= 0 or not ids:
        return []
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(ids, size=min(k, len(ids)), replace=False))


def few_masks_rows(
    per_image: pd.DataFrame,
    summary: pd.DataFrame,
    settings: EvaluateSettings,
    data_dir: str | Path | None = None,
    things: Sequence[Evaluated] = (),
    classifier_predictions: Path | None = None,
    label_recipe: str | None = None,
) -> pd.DataFrame:
    """Test rows chosen by each ``k`` of ``settings.few_masks``, setting "few masks
    (k=...)", ``choice`` saying what was chosen: pseudo-masks, the recipe of best mean
    Dice on the drawn images; segmenters (given ``things``), the cut and refinement of
    best mean Dice, rescored from their stored probabilities, never marking more val
    images without a lesion than as stored, read from ``label_recipe``'s U-Net (the
    label-only choice) or, without one, from any recipe's."""
    counts = [settings.few_masks] if isinstance(settings.few_masks, int) else settings.few_masks
    segmenters = [t for t in things if t.model == "segmenter"] if data_dir is not None else []
    if any(t.recipe == label_recipe for t in segmenters):
        segmenters = [t for t in segmenters if t.recipe == label_recipe]
    # Which readings each segmenter may take depends on labels only: once for every k.
    allowed = _allowed_variants(per_image, data_dir, segmenters, settings, classifier_predictions)
    rows = []
    for k in counts:
        drawn = drawn_images(per_image, k, settings.seed)
        if not drawn:
            continue
        chosen = [_recipe_row(per_image, summary, drawn, "pseudo_mask")]
        if segmenters:
            thing, variant = _best_variant(data_dir, allowed, drawn, classifier_predictions)
            test = Readings(data_dir, thing, "test", classifier_predictions)
            chosen.append(summary_table(test.scores(variant)).assign(choice=variant.label))
        else:
            chosen.append(_recipe_row(per_image, summary, drawn, "segmenter"))
        rows += [row.assign(setting=f"few masks (k={len(drawn)})") for row in chosen]
    rows = [row for row in rows if len(row)]
    return pd.concat(rows, ignore_index=True) if rows else summary.iloc[0:0]


def _recipe_row(per_image, summary, drawn, model: str) -> pd.DataFrame:
    """The test row of the recipe whose ``model`` scores best on the drawn val images."""
    picked = per_image[per_image["sample_id"].isin(drawn) & (per_image["split"] == "val")]
    scores = picked[picked["model"] == model].groupby("recipe", sort=True)["dice"].mean()
    if scores.empty:
        return summary.iloc[0:0]
    best = (summary["recipe"] == scores.idxmax()) & (summary["model"] == model)
    return summary[best & (summary["split"] == "test")].assign(choice="recipe")


def _allowed_variants(per_image, data_dir, segmenters, settings, classifier_predictions):
    """Per segmenter (in recipe order), the variants that mark no more val images
    without a lesion than the stored reading does (those need labels, not masks)."""
    val = per_image[per_image["split"] == "val"] if len(per_image) else per_image
    normals = sorted(val.loc[~val["truth_positive"], "sample_id"].unique()) if len(val) else []
    allowed = []
    for thing in sorted(segmenters, key=lambda t: t.recipe):
        healthy = Readings(data_dir, thing, normals, classifier_predictions)
        stored, *others = variants(settings)
        limit = healthy.fires(stored) + 1e-12
        kept = [stored, *(v for v in others if healthy.fires(v) <= limit)]
        allowed.append((thing, kept))
    return allowed


def _best_variant(data_dir, allowed, drawn, classifier_predictions):
    """The (segmenter, variant) of best mean Dice on the drawn val images; ties: the
    first recipe in name order, then the first variant."""
    best, best_dice = None, -np.inf
    for thing, kept in allowed:
        lesions = Readings(data_dir, thing, drawn, classifier_predictions)
        for variant in kept:
            dice = lesions.scores(variant)["dice"].mean()
            if dice > best_dice + 1e-12:
                best, best_dice = (thing, variant), dice
    return best


class Readings:
    """One segmenter's stored probabilities, ground truth and gate on some images (a
    split by name, or sample ids), read once and scored under any variant."""

    def __init__(self, data_dir, thing: Evaluated, images: str | Sequence[str], classifier):
        self.store, self.thing = ShardStore(data_dir), thing
        ids = self.store.sample_ids
        if isinstance(images, str):
            rows = list(self.store.positions(images))
        else:
            where = {s: i for i, s in enumerate(ids)}
            rows = [where[s] for s in images]
        data = self.store.take(["mask", "has_mask"], rows)
        has_truth = data["has_mask"].bool()
        rows = [r for r, has in zip(rows, has_truth.tolist(), strict=True) if has]
        self.ids = [ids[r] for r in rows]
        if not rows:  # nothing to read: no image, or none with ground truth
            return
        self.truth = data["mask"][has_truth]
        self.probability = stored_probabilities(ShardStore(thing.masks_dir), rows)
        self.keep = _gate(thing, self.ids, classifier)

    def fires(self, variant: Variant) -> float:
        """The share of these images given any foreground (0 for none)."""
        if not self.ids:
            return 0.0
        masks = variant.masks(self.probability, self.keep)
        return float(masks.reshape(len(masks), -1).any(1).mean())

    def scores(self, variant: Variant) -> pd.DataFrame:
        """Per-image rows as the summary reads them."""
        if not self.ids:
            return pd.DataFrame(columns=["truth_positive", "pred_positive", "dice"])
        predicted = variant.masks(self.probability, self.keep)[:, None]
        return score_images(self.ids, self.truth, predicted, self.thing, self.store)


def _gate(thing: Evaluated, ids: list[str], classifier: Path | None) -> np.ndarray:
    """The images the segmenter's own gate let through (its metrics.json's cut)."""
    metrics = thing.masks_dir.parent / "metrics.json"
    cut = json.loads(metrics.read_text()).get("gate_threshold") if metrics.exists() else None
    if cut is None:
        return np.ones(len(ids), bool)
    if classifier is None:
        raise XaisegError(f"{metrics}: a gated segmenter needs the classifier's predictions")
    return read_probabilities(classifier, ids) >= cut


def stored_probabilities(predictions: ShardStore, rows: Sequence[int]) -> np.ndarray:
    """(N, *spatial) foreground probabilities of a segmenter's predictions folder; a
    folder of masks alone reads as 0 / 1 (the stored mask is its one reading)."""
    try:
        stored = predictions.take(["probability"], rows)["probability"]
    except KeyError:
        stored = predictions.take(["mask"], rows)["mask"] == 1
    return stored.float().numpy()[:, 0]
