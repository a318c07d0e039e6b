"""Choosing a recipe without masks: the detection margin of its U-Net.

Each recipe's U-Net, trained on the recipe's pseudo-masks, has its probabilities of
the val images stored by the segmenter stage. An image's score is the mean foreground
probability of its most confident pixels (``TOP_SHARE`` of them); the criterion is the
mean score of the val images whose label holds the finding less the mean score of
those without. Pseudo-masks that mark the finding teach a U-Net that fires on lesions
and stays quiet elsewhere; masks on what every image shows (anatomy, edges) or on noise
teach one that fires on both or on neither. Reads image labels and the U-Nets'
probabilities, never a mask. Every criterion measured, the losers too:
docs/criterion.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.few_masks import stored_probabilities

CRITERION = "detection_margin"
WEAK_MODELS: Sequence[str] = ("pseudo_mask", "segmenter")
# The share of an image's pixels whose probabilities make its score: 64 px at 128 x 128.
# Wider than one pixel, whose maximum a single speck decides; narrower than a lesion.
TOP_SHARE = 1 / 256
CHUNK = 256  # val images read at a time


def image_scores(probabilities: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """Per image (N, *spatial): the mean of its top ``share`` of pixel values (at least
    one pixel)."""
    flat = np.asarray(probabilities, np.float32).reshape(len(probabilities), -1)
    top = max(1, round(share * flat.shape[1]))
    return np.partition(flat, flat.shape[1] - top, axis=1)[:, -top:].mean(1)


def detection_margin(scores: np.ndarray, with_finding: np.ndarray) -> float:
    """Mean score of the images with the finding less that of the images without; NaN
    when either group is empty (nothing to compare)."""
    with_finding = np.asarray(with_finding, bool)
    if with_finding.all() or not with_finding.any():
        return float("nan")
    return float(scores[with_finding].mean() - scores[~with_finding].mean())


def recipe_criterion(data_dir: str | Path, predictions: dict[str, Path]) -> pd.DataFrame:
    """One row per recipe, from its U-Net's stored probabilities (``predictions``:
    recipe -> the segmenter's predictions folder): the detection margin on the val
    split, and ``label_choice`` on the recipe with the largest (the first of equals)."""
    store = ShardStore(data_dir)
    finding = len(store.index["classes"]) - 1
    rows = store.positions("val")
    with_finding = np.array([store.samples[i]["label_index"] == finding for i in rows], bool)
    margins = {}
    for recipe, folder in predictions.items():
        stored = ShardStore(folder)
        scores = [image_scores(stored_probabilities(stored, part)) for part in _chunks(rows)]
        margins[recipe] = detection_margin(np.concatenate(scores or [[]]), with_finding)
    table = pd.DataFrame({"recipe": list(margins), CRITERION: list(margins.values())})
    best = table[CRITERION].idxmax() if table[CRITERION].notna().any() else None
    table["label_choice"] = table.index == best
    return table


def chosen_recipe(table: pd.DataFrame) -> str | None:
    """The recipe ``recipe_criterion``'s table chose, if it chose one."""
    chosen = table.loc[table["label_choice"].astype(bool), "recipe"]
    return chosen.iloc[0] if len(chosen) else None


def _chunks(rows: list[int]) -> list[list[int]]:
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def with_criterion(summary: pd.DataFrame, criterion: pd.DataFrame) -> pd.DataFrame:
    """The criterion beside every row of a recipe's pseudo-masks and segmenter; other
    rows (supervised, few masks) leave it empty."""
    summary = summary.copy()
    weak = summary["model"].isin(WEAK_MODELS) & (summary["setting"] == "no masks")
    values = summary["recipe"].map(criterion.set_index("recipe")[CRITERION])
    chosen = summary["recipe"].map(criterion.set_index("recipe")["label_choice"])
    summary[CRITERION] = values.where(weak)
    summary["label_choice"] = chosen.fillna(False).astype(bool) & weak
    return summary
