"""Figures of the HTML report: classifier ROC, Dice against threshold, sanity checks.

Each has a title, labelled axes and a caption in ``workflow/report/`` that says how
to read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from xaiseg.evaluate.localisation import THRESHOLDS
from xaiseg.provenance import atomic_path


def _save(fig, path: str | Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def roc_points(probability: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct probability, from (0, 0) up."""
    order = np.argsort(-probability, kind="stable")
    hits = positive[order]
    tpr = np.concatenate([[0], np.cumsum(hits) / max(1, hits.sum())])
    fpr = np.concatenate([[0], np.cumsum(~hits) / max(1, (~hits).sum())])
    return fpr, tpr


def placeholder(path: Path, title: str, why: str) -> None:
    """A figure that says why there is nothing to draw (the report expects the file)."""
    fig, ax = plt.subplots(figsize=(4.6, 1.6))
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    ax.text(0.5, 0.4, why, ha="center", va="center", fontsize=8, wrap=True)
    _save(fig, path)


def classifier_roc(predictions_csv: Path, metrics_json: Path, finding: str, path: Path) -> None:
    """ROC per split, and the operating point at the threshold chosen on val."""
    predictions = pd.read_csv(predictions_csv)
    metrics = json.loads(Path(metrics_json).read_text())
    threshold = metrics.get("val_threshold")
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for split in ("val", "test"):
        part = predictions[predictions["split"] == split]
        positive = (part["label"] == finding).to_numpy()
        if positive.all() or not positive.any():
            continue
        probability = part["probability"].to_numpy()
        fpr, tpr = roc_points(probability, positive)
        auc = metrics.get(split, {}).get("auc", float("nan"))
        (line,) = ax.plot(fpr, tpr, label=f"{split} (AUC {auc:.3f})")
        if threshold is not None:
            chosen = probability >= threshold
            ax.plot(
                (chosen & ~positive).sum() / (~positive).sum(),
                (chosen & positive).sum() / positive.sum(),
                "o", color=line.get_color(),
            )  # fmt: skip
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set_xlabel("false-positive rate (images without the finding)")
    ax.set_ylabel("true-positive rate (images with the finding)")
    title = "Classifier ROC" + (f"; dots: val threshold {threshold:.2f}" if threshold else "")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def dice_against_threshold(per_image: pd.DataFrame, path: Path) -> None:
    """Mean Dice of each map, peak-normalised and cut at each level, on val and test."""
    splits = [s for s in ("val", "test") if s in set(per_image.get("split", []))]
    fig, axes = plt.subplots(1, max(1, len(splits)), figsize=(4.4 * max(1, len(splits)), 3.6))
    axes = np.atleast_1d(axes)
    columns = [f"dice@{t:.2f}" for t in THRESHOLDS]
    for ax, split in zip(axes, splits, strict=False):
        part = per_image[per_image["split"] == split]
        for name, group in part.groupby("map", sort=True):
            ax.plot(THRESHOLDS, group[columns].mean().to_numpy(), label=name)
        ax.set_xlabel("threshold (share of the map's peak)")
        ax.set_ylabel("mean Dice, images with a lesion")
        ax.set_title(f"Dice against threshold ({split})", fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    _save(fig, path)


def sanity_cascade(cascades: Mapping[str, pd.DataFrame], max_spearman: float, path: Path) -> None:
    """Rank correlation with the original map as blocks are randomised, output first."""
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    for name, cascade in sorted(cascades.items()):
        steps = np.arange(1, len(cascade) + 1)
        ax.plot(steps, cascade["spearman_abs"], marker="o", label=f"{name} (magnitude)")
        ax.plot(steps, cascade["spearman"], marker=".", linestyle=":", alpha=0.6,
                label=f"{name} (signed)")  # fmt: skip
    ax.axhline(max_spearman, color="red", linewidth=1, label=f"sanity bar {max_spearman}")
    ax.set_xlabel("blocks randomised, from the output backwards")
    ax.set_ylabel("Spearman correlation with the original map")
    ax.set_title("Model-parameter randomisation (cascading)", fontsize=9)
    ax.set_ylim(-0.2, 1.05)
    ax.legend(fontsize=6, ncol=2)
    _save(fig, path)
