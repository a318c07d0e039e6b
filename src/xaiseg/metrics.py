"""Segmentation and classification metrics on top of MONAI's implementations.

Conventions (they matter with many empty masks): Dice and IoU of an image whose
ground truth is empty are 1 when the prediction is empty too and 0 otherwise
(MONAI's ``ignore_empty=False``); HD95 only where both masks are non-empty.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch
from monai.metrics import (
    compute_confusion_matrix_metric,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
    compute_roc_auc,
    get_confusion_matrix,
)


def _one_hot(masks: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) binary -> (N, 2, H, W) one-hot, background first."""
    fg = (masks > 0).float()
    return torch.cat([1 - fg, fg], dim=1)


def segmentation_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image Dice, IoU and HD95 (NaN where undefined) of binary (N, 1, H, W) masks."""
    p, t = _one_hot(pred), _one_hot(truth)
    dice = compute_dice(p, t, include_background=False, ignore_empty=False)[:, 0]
    iou = compute_iou(p, t, include_background=False, ignore_empty=False)[:, 0]
    both = ((pred.flatten(1) > 0).any(1) & (truth.flatten(1) > 0).any(1)).numpy()
    hd95 = np.full(len(pred), np.nan)
    if both.any():
        keep = torch.from_numpy(both)
        hd = compute_hausdorff_distance(p[keep], t[keep], include_background=False, percentile=95)
        hd95[both] = hd[:, 0].numpy()
    return {"dice": dice.numpy(), "iou": iou.numpy(), "hd95": hd95}


def mean_dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    return float(segmentation_scores(pred, truth)["dice"].mean()) if len(pred) else 0.0


def pooled_dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """One Dice over every pixel of every image (nnU-Net's "pseudo Dice"): a few stray
    pixels on an image without the finding cost a few pixels, not that image's whole
    score. 1 when both are empty everywhere."""
    pred, truth = pred > 0, truth > 0
    total = int(pred.sum()) + int(truth.sum())
    return 2 * int((pred & truth).sum()) / total if total else 1.0


def classification_metrics(prob: torch.Tensor, label: torch.Tensor, threshold: float = 0.5) -> dict:
    """AUC, accuracy, sensitivity and specificity of positive-class probabilities."""
    label = label.long()
    out = {"n": len(label), "positives": int(label.sum())}
    out["auc"] = (
        float(compute_roc_auc(prob.float(), label))
        if 0 < out["positives"] < len(label)
        else float("nan")
    )
    pred = (prob >= threshold).long()
    # One "batch item" holding every sample, so MONAI counts TP/FP/TN/FN over the split.
    confusion = get_confusion_matrix(pred.view(1, 1, -1), label.view(1, 1, -1))
    for name in ("accuracy", "sensitivity", "specificity"):
        out[name] = float(compute_confusion_matrix_metric(name, confusion).squeeze())
    return out


def youden_threshold(prob: torch.Tensor, label: torch.Tensor) -> float:
    """The probability cut maximising sensitivity + specificity - 1 (ties: the lowest)."""
    label = label.bool()
    if label.all() or not label.any():
        return 0.5
    best, best_j = 0.5, -1.0
    for cut in torch.unique(prob).tolist():
        pred = prob >= cut
        j = float((pred & label).sum() / label.sum() + (~pred & ~label).sum() / (~label).sum()) - 1
        if j > best_j:
            best, best_j = cut, j
    return float(best)


def wilson_upper(count: int, total: int, confidence: float) -> float:
    """One-sided upper confidence bound of a binomial rate (Wilson score interval): a
    rate seen on a dozen images is not trusted as if it were measured on thousands."""
    if total == 0:
        return 1.0
    z = NormalDist().inv_cdf(confidence)
    rate, spread = count / total, z * z / total
    centre = rate + spread / 2
    margin = z * math.sqrt(rate * (1 - rate) / total + spread / (4 * total))
    return min(1.0, (centre + margin) / (1 + spread))


def false_positive_gate(
    probability: np.ndarray, fires: np.ndarray, max_rate: float, confidence: float = 0.5
) -> float:
    """The lowest classifier cut under which these images without the finding keep a
    segmenter's foreground (``fires``) at a rate of at most ``max_rate``, read as the
    upper bound at ``confidence`` (0.5: the rate as counted): 0 when that already holds."""
    total = len(fires)
    allowed = 0
    while allowed < total and wilson_upper(allowed + 1, total, confidence) <= max_rate + 1e-9:
        allowed += 1
    firing = np.sort(np.asarray(probability, dtype=np.float64)[np.asarray(fires, bool)])[::-1]
    if len(firing) <= allowed:
        return 0.0
    # Just above the first probability that must be cut: every tie is cut with it.
    return float(np.nextafter(firing[allowed], np.inf))


def grouped_bootstrap_auc(
    prob: np.ndarray,
    label: np.ndarray,
    groups: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the AUC, resampling whole groups (patients) with
    replacement: slices of one patient are not independent. Resamples holding one
    class only are skipped; (nan, nan) when none holds both."""
    from scipy.stats import rankdata

    prob, label, groups = np.asarray(prob, float), np.asarray(label, bool), np.asarray(groups)
    names, members = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(members == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_resamples):
        rows = np.concatenate([rows_of[g] for g in rng.integers(0, len(names), len(names))])
        truth = label[rows]
        n_pos = int(truth.sum())
        if 0 < n_pos < len(rows):
            ranks = rankdata(prob[rows])  # Mann-Whitney U, ties averaged
            u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2
            aucs.append(u / (n_pos * (len(rows) - n_pos)))
    if not aucs:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)
