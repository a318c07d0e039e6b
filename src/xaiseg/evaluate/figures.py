"""Overlay grid: image, ground truth, saliency, pseudo-mask, prediction per method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from xaiseg.provenance import atomic_path


def to_2d(
    arrays: np.ndarray, truth: np.ndarray, picks: list[int] | None = None
) -> tuple[np.ndarray, list[int]]:
    """(N, H, W) stays; (N, D, H, W) volumes give the slice along D where the truth is
    largest (the middle one when it is empty). Returns the slices and the picks."""
    if arrays.ndim == 3:
        return arrays, []
    if picks is None:
        area = truth.reshape(len(truth), truth.shape[1], -1).sum(-1)
        picks = [int(a.argmax()) if a.any() else truth.shape[1] // 2 for a in area]
    return np.stack([a[p] for a, p in zip(arrays, picks, strict=True)]), picks


def overlay_grid(
    path: str | Path,
    images: np.ndarray,
    truths: np.ndarray,
    columns: Mapping[str, np.ndarray],
    titles: Sequence[str],
) -> None:
    """One row per image; ``columns`` maps a heading to (N, H, W) maps or masks.

    Masks are drawn as outlines over the image so misalignment shows at a glance;
    float maps are drawn as a heat overlay.
    """
    n_cols = 2 + len(columns)
    fig, axes = plt.subplots(
        len(images), n_cols, figsize=(1.9 * n_cols + 0.8, 1.9 * len(images)), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for row, (image, truth) in enumerate(zip(images, truths, strict=True)):
        panels = {"image": None, "ground truth": truth, **{k: v[row] for k, v in columns.items()}}
        for col, (heading, panel) in enumerate(panels.items()):
            ax = axes[row, col]
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            if panel is not None and panel.dtype == bool:
                if panel.any():
                    ax.contour(
                        panel,
                        levels=[0.5],
                        colors="lime" if heading == "ground truth" else "red",
                        linewidths=0.8,
                    )
            elif panel is not None:
                ax.imshow(panel, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(heading, fontsize=7)
        axes[row, 0].set_ylabel(titles[row], fontsize=7)
    if any(v.dtype != bool for v in columns.values()):
        scale = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, 1), cmap="jet")
        bar = fig.colorbar(scale, ax=axes, shrink=0.5, aspect=30, pad=0.01)
        bar.set_label("map, share of its peak (positive part)", fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def dice_against_fraction_plot(
    path: str | Path, table, references: Mapping[str, float], split: str = "test"
) -> None:
    """Dice against the share of train masks, one line per model (mean over seeds,
    bars: standard deviation), with horizontal references (no masks, all masks)."""
    rows = table[table["split"] == split]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for (model, recipe), group in rows.groupby(["model", "recipe"], sort=True):
        label = f"fine-tuned from {recipe} pseudo-masks" if model == "finetune" else "from scratch"
        ax.errorbar(
            group["fraction"] * 100,
            group["dice_mean"],
            yerr=group["dice_sd"].fillna(0),
            marker="o",
            capsize=3,
            label=label,
        )
    for (label, value), style in zip(references.items(), ("--", ":"), strict=False):
        ax.axhline(value, linestyle=style, color="grey", linewidth=1, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("ground-truth masks used (% of the train split)")
    ax.set_ylabel(f"Dice, {split} images with a lesion")
    ax.set_title("Pseudo-mask pretraining against scratch, by masks used")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
