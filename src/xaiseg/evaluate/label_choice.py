"""The U-Net the label-only criterion chooses, as an artifact of its own.

DoLL's fine-tuning runs (``finetune.pretrained: label_choice``) start from the recipe
U-Net that the detection margin (``criterion.py``) picks on the val split's image
labels: which recipe suits a dataset is known only once every recipe's U-Net is
trained, so the plan cannot name it (a recipe named in the config was chosen on one
dataset: lgg40's cf-healthy97 U-Net scores 0.06 test Dice on BUSI). The evaluation
computes the same criterion from the same predictions and reports the fine-tuning rows
under the recipe chosen here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from xaiseg.errors import XaisegError
from xaiseg.evaluate.criterion import CRITERION, chosen_recipe, recipe_criterion
from xaiseg.provenance import write_provenance, write_text
from xaiseg.settings import LABEL_CHOICE

WEIGHTS = "model.safetensors"


def choose_segmenter(
    data_dir: str | Path, segmenters: dict[str, Path], out_dir: str | Path, tie: float
) -> str:
    """Copy the chosen recipe U-Net's weights (``segmenters``: recipe -> its segmenter
    folder; ``tie``: ``evaluate.choice_tie``) into ``out_dir`` beside the criterion's
    table; returns the recipe."""
    predictions = {r: Path(f) / "predictions" for r, f in segmenters.items()}
    table = recipe_criterion(data_dir, predictions, tie)
    recipe = chosen_recipe(table)
    if recipe is None:
        raise XaisegError(
            f"{data_dir}: the val split needs images with and without the finding for"
            f" finetune.pretrained: {LABEL_CHOICE} to choose; name a recipe instead"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "criterion.csv", table.to_csv(index=False))
    shutil.copyfile(Path(segmenters[recipe]) / WEIGHTS, out / WEIGHTS)
    write_provenance(
        out,
        stage="label_choice",
        params={"criterion": CRITERION, "choice_tie": tie, "chosen": recipe},
        inputs=[Path(data_dir) / "index.json", *[Path(f) / WEIGHTS for f in segmenters.values()]],
    )
    return recipe


def choose_masks(criterion: str | Path, masks: dict[str, Path], out_dir: str | Path) -> str:
    """Copy the pseudo-masks of the recipe ``choose_segmenter`` chose (its
    ``criterion.csv``; ``masks``: recipe -> its masks folder) to ``out_dir``, whole or
    not at all: a count run's mixed U-Net trains on them (``finetune.mixed_views``)."""
    recipe = chosen_recipe(pd.read_csv(criterion))
    if recipe not in masks:
        raise XaisegError(f"{criterion}: its chosen recipe {recipe!r} has no masks given")
    out = Path(out_dir)
    staging = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(masks[recipe], staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return recipe


def named_choice(per_image: pd.DataFrame, recipe: str | None) -> pd.DataFrame:
    """Rows of the label-chosen U-Net's fine-tuning runs under the recipe it is."""
    if recipe is None:
        return per_image
    return per_image.assign(recipe=per_image["recipe"].replace(LABEL_CHOICE, recipe))
