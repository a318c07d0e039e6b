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

Margins a few hundredths apart are no evidence for either U-Net (docs/criterion.md,
twelfth stop). With a tie width (``evaluate.choice_tie``), the candidates within it of
the best margin are told apart by their agreement: the mean pooled Dice of a U-Net's
val masks with every other candidate's. A U-Net that marks what the others mark
learnt the lesion they share, not one recipe's own mistakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.few_masks import stored_probabilities

CRITERION = "detection_margin"
AGREEMENT = "agreement"
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


def recipe_criterion(
    data_dir: str | Path, predictions: dict[str, Path], tie: float
) -> pd.DataFrame:
    """One row per recipe, from its U-Net's stored predictions (``predictions``: recipe
    -> the segmenter's predictions folder): the detection margin and the agreement on
    the val split, and ``label_choice`` on the recipe ``choose`` picks."""
    store = ShardStore(data_dir)
    finding = len(store.index["classes"]) - 1
    rows = store.positions("val")
    with_finding = np.array([store.samples[i]["label_index"] == finding for i in rows], bool)
    stored = {recipe: ShardStore(folder) for recipe, folder in predictions.items()}
    margins = {}
    for recipe, folder in stored.items():
        scores = [image_scores(stored_probabilities(folder, part)) for part in _chunks(rows)]
        margins[recipe] = detection_margin(np.concatenate(scores or [[]]), with_finding)
    table = pd.DataFrame({"recipe": list(margins), CRITERION: list(margins.values())})
    table[AGREEMENT] = table["recipe"].map(agreement(stored, rows))
    table["label_choice"] = table.index == choose(table, tie)
    return table


def agreement(stored: dict[str, ShardStore], rows: list[int]) -> dict[str, float]:
    """Each candidate's mean pooled Dice (one Dice over every pixel of ``rows``, 1 where
    both mark nothing: ``xaiseg.metrics.pooled_dice``) between its stored masks and
    every other candidate's; NaN alone. Counted in chunks: a val split's masks of every
    candidate need not fit in memory at once."""
    names = list(stored)
    overlap = np.zeros((len(names), len(names)))
    marked = np.zeros(len(names))
    for part in _chunks(rows):
        masks = np.stack([stored[n].take(["mask"], part)["mask"].numpy() == 1 for n in names])
        for i, j in combinations(range(len(names)), 2):
            overlap[i, j] += np.count_nonzero(masks[i] & masks[j])
        marked += np.count_nonzero(masks.reshape(len(names), -1), axis=1)
    overlap = overlap + overlap.T
    totals = marked[:, None] + marked[None, :]
    dice = np.divide(2 * overlap, totals, out=np.ones_like(overlap), where=totals > 0)
    others = ~np.eye(len(names), dtype=bool)
    return {n: float(dice[i, others[i]].mean()) if len(names) > 1 else float("nan")
            for i, n in enumerate(names)}  # fmt: skip


def choose(table: pd.DataFrame, tie: float) -> int | None:
    """The row of the largest margin (the first of equals) or, among the rows within
    ``tie`` of it, the one of most agreement; None when no margin could be measured."""
    margins = table[CRITERION]
    if not margins.notna().any():
        return None
    near = table[margins >= margins.max() - tie]
    if tie <= 0 or len(near) < 2 or not near[AGREEMENT].notna().any():
        return margins.idxmax()
    return near[AGREEMENT].idxmax()


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
    by_recipe = criterion.set_index("recipe")
    for column in (CRITERION, AGREEMENT):
        if column in by_recipe:  # an older run's table has no agreement
            summary[column] = summary["recipe"].map(by_recipe[column]).where(weak)
    chosen = summary["recipe"].map(by_recipe["label_choice"])
    summary["label_choice"] = chosen.fillna(False).astype(bool) & weak
    return summary
