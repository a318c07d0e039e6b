"""Does a map localise the lesion? Per-image metrics against a ground-truth mask.

Each takes one raw signed map and one boolean mask of the same shape (any number of
dimensions) and returns a float, never NaN: an image without a lesion, or a map
without positive evidence, scores 0 (AUROC: 0.5, chance), so averages stay honest.
The workflow averages them over images that hold a lesion.

- pointing game (Zhang et al. 2018): the map's maximum lies inside the mask;
- energy-based pointing game (Wang et al. 2020, Score-CAM): share of the min-max
  normalised map's sum inside the mask;
- relevance mass accuracy (Arras et al. 2022): share of the positive relevance inside;
- relevance rank accuracy (Arras et al. 2022): share of the K highest positive pixels
  inside, K the mask's size;
- AUROC of map values as a detector of mask pixels (Mann-Whitney, ties averaged);
- Dice of the peak-normalised map thresholded at a level, or by Otsu.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from xaiseg.masks.base import otsu_mask

THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)


def pointing_game(saliency: np.ndarray, truth: np.ndarray) -> float:
    if not truth.any() or saliency.max() <= 0:
        return 0.0
    return float(truth.flat[int(np.argmax(saliency))])


def energy_pointing_game(saliency: np.ndarray, truth: np.ndarray) -> float:
    span = float(saliency.max() - saliency.min())
    if not truth.any() or span <= 0:
        return 0.0
    scaled = (saliency - saliency.min()) / span
    return float(scaled[truth].sum() / scaled.sum())


def relevance_mass_accuracy(saliency: np.ndarray, truth: np.ndarray) -> float:
    positive = np.clip(saliency, 0, None)
    total = float(positive.sum())
    return float(positive[truth].sum() / total) if truth.any() and total > 0 else 0.0


def relevance_rank_accuracy(saliency: np.ndarray, truth: np.ndarray) -> float:
    k = int(truth.sum())
    if k == 0:
        return 0.0
    values = saliency.ravel()
    top = np.argsort(-values, kind="stable")[:k]
    return float((truth.ravel()[top] & (values[top] > 0)).sum() / k)


def auroc(saliency: np.ndarray, truth: np.ndarray) -> float:
    labels = truth.ravel()
    n_pos = int(labels.sum())
    if n_pos in (0, labels.size):
        return 0.5
    ranks = rankdata(saliency.ravel())
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * (labels.size - n_pos)))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    total = int(pred.sum() + truth.sum())
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def peak_normalised(saliency: np.ndarray) -> np.ndarray:
    top = float(saliency.max())
    return np.clip(saliency, 0, None) / top if top > 0 else np.zeros_like(saliency)


def dice_at_thresholds(saliency: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of the peak-normalised map at every level of ``THRESHOLDS``."""
    scaled = peak_normalised(saliency)
    return np.array([dice(scaled >= t, truth) for t in THRESHOLDS])


def otsu_dice(saliency: np.ndarray, truth: np.ndarray) -> float:
    scaled = peak_normalised(saliency).ravel()  # flat: any number of dimensions
    return dice(otsu_mask(scaled).reshape(truth.shape), truth)


PER_IMAGE = {
    "pointing_game": pointing_game,
    "energy_pointing_game": energy_pointing_game,
    "relevance_mass_accuracy": relevance_mass_accuracy,
    "relevance_rank_accuracy": relevance_rank_accuracy,
    "auroc": auroc,
    "dice_otsu": otsu_dice,
}


def localisation_scores(saliency: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Every per-image metric, plus the Dice at each threshold (``dice@<t>``)."""
    scores = {name: fn(saliency, truth) for name, fn in PER_IMAGE.items()}
    for t, value in zip(THRESHOLDS, dice_at_thresholds(saliency, truth), strict=True):
        scores[f"dice@{t:.2f}"] = value
    return scores
