"""Per-image and summary tables of every evaluated thing against ground truth.

Rows are (method, mask_rule, model) triples: ``pseudo_mask`` scores the pseudo-masks
themselves, ``segmenter`` the U-Net trained on them, ``supervised`` the same U-Net
trained on ground truth. ``dice``/``iou``/``hd95`` average over images whose ground
truth holds a lesion; ``dice_all`` also counts lesion-free images (1 when the
prediction is empty too), and ``false_positive_rate`` is the share of lesion-free
images with a non-empty prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.metrics import segmentation_scores
from xaiseg.masks.build import load_masks

SUMMARY_COLUMNS = [
    "method",
    "mask_rule",
    "model",
    "split",
    "n",
    "n_positive",
    "dice",
    "iou",
    "hd95",
    "dice_all",
    "false_positive_rate",
]


@dataclass(frozen=True)
class Evaluated:
    method: str
    mask_rule: str
    model: str
    masks_dir: Path


def parse_evaluated(spec: str) -> Evaluated:
    """``method:rule:model:folder`` as passed on the command line."""
    method, rule, model, folder = spec.split(":", 3)
    return Evaluated(method, rule, model, Path(folder))


def per_image_table(data_dir: str | Path, things: Sequence[Evaluated]) -> pd.DataFrame:
    store = ShardStore(data_dir)
    tensors = store.load(["mask", "has_mask"])
    has_truth = tensors["has_mask"].bool()
    truth = tensors["mask"][has_truth]
    meta = pd.DataFrame(store.samples)[has_truth.numpy()]
    frames = []
    for thing in things:
        pred = load_masks(thing.masks_dir)[has_truth]
        scores = segmentation_scores(pred, truth)
        frames.append(
            pd.DataFrame(
                {
                    "sample_id": meta["sample_id"].to_numpy(),
                    "split": meta["split"].to_numpy(),
                    "method": thing.method,
                    "mask_rule": thing.mask_rule,
                    "model": thing.model,
                    "truth_positive": (truth.flatten(1) > 0).any(1).numpy(),
                    "pred_positive": (pred.flatten(1) > 0).any(1).numpy(),
                    **scores,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def summary_table(per_image: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (method, rule, model, split), group in per_image.groupby(
        ["method", "mask_rule", "model", "split"], sort=False
    ):
        positive = group[group["truth_positive"]]
        negative = group[~group["truth_positive"]]
        rows.append(
            {
                "method": method,
                "mask_rule": rule,
                "model": model,
                "split": split,
                "n": len(group),
                "n_positive": len(positive),
                "dice": positive["dice"].mean(),
                "iou": positive["iou"].mean(),
                "hd95": positive["hd95"].mean(),
                "dice_all": group["dice"].mean(),
                "false_positive_rate": negative["pred_positive"].mean()
                if len(negative)
                else np.nan,
            }
        )
    order = {"pseudo_mask": 0, "segmenter": 1, "supervised": 2}
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    frame["_order"] = frame["model"].map(order)
    return (
        frame.sort_values(["split", "_order", "method", "mask_rule"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub-style table without extra dependencies (pandas needs tabulate)."""
    shown = frame.copy()
    for column in shown.select_dtypes("number").columns:
        if column not in ("n", "n_positive"):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
