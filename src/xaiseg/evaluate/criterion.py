"""Choosing a recipe without masks: the deletion drop.

For each val image with the finding (known from its label), the classifier's
probability of the finding on the image, less its probability once the recipe's
pseudo-mask is blurred away; the criterion is the mean over those images. A mask on the
lesion takes the evidence with it; a mask beside it leaves the probability where it
was. Reads image labels and the classifier only, never a mask. How well it ranks
recipes by val Dice, per dataset: docs/criterion.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from xaiseg.data.shards import ShardStore
from xaiseg.settings import ClassifierSettings
from xaiseg.train.classifier import predict_probabilities

CPU = torch.device("cpu")
BATCH = ClassifierSettings.predict_batch_size  # the classifier's own scoring batch

CRITERION = "deletion_drop"
WEAK_MODELS: Sequence[str] = ("pseudo_mask", "segmenter")
# The blur's sigma as a share of the image's side (8 px at 128): wide enough to wipe a
# lesion's texture, narrow enough to keep the brightness of what surrounds it.
BLUR_SHARE = 1 / 16


def blur(images: np.ndarray, share: float = BLUR_SHARE) -> np.ndarray:
    """Each channel of each image (N, C, *spatial) blurred over its spatial axes."""
    spatial = images.shape[2:]
    sigma = (0, 0, *[share * side for side in spatial])
    return ndimage.gaussian_filter(images.astype(np.float32), sigma)


def deletion_drop(
    model: torch.nn.Module, images: np.ndarray, masks: np.ndarray, finding: int
) -> np.ndarray:
    """Per image (N, C, *spatial), with bool masks (N, *spatial): p(finding) less
    p(finding) with the mask's pixels replaced by the blurred image's (on the CPU)."""
    inside = masks[:, np.newaxis].astype(np.float32)
    deleted = images * (1 - inside) + blur(images) * inside
    before, after = (
        predict_probabilities(
            model, torch.as_tensor(x, dtype=torch.float32), CPU, batch_size=BATCH
        )[:, finding]
        for x in (images, deleted)
    )
    return (before - after).numpy()


def recipe_criterion(
    data_dir: str | Path, mask_dirs: dict[str, Path], classifier_dir: str | Path
) -> pd.DataFrame:
    """One row per recipe: its deletion drop on the val images with the finding, and
    ``label_choice`` on the recipe with the largest (the first of equals)."""
    from xaiseg.models.spec import load_network

    store = ShardStore(data_dir)
    finding = len(store.index["classes"]) - 1
    rows = [i for i in store.positions("val") if store.samples[i]["label_index"] == finding]
    model, _spec = load_network(classifier_dir)
    drops = dict.fromkeys(mask_dirs, np.nan)  # a val split without the finding: no drop
    if rows:
        images = store.take(["image"], rows)["image"].float().numpy()
        for recipe, folder in mask_dirs.items():
            masks = ShardStore(folder).take(["mask"], rows)["mask"][:, 0].numpy() == 1
            drops[recipe] = float(deletion_drop(model, images, masks, finding).mean())
    table = pd.DataFrame({"recipe": list(drops), CRITERION: list(drops.values())})
    best = table[CRITERION].idxmax() if table[CRITERION].notna().any() else None
    table["label_choice"] = table.index == best
    return table


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
