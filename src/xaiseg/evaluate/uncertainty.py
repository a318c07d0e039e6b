"""Confidence intervals that respect patients: bootstrap over groups, not images.

Slices (or images) of one patient are not independent; resampling them one by one
gives intervals far too narrow. Every resample draws whole groups with replacement.
"""

from __future__ import annotations

import numpy as np

N_RESAMPLES = 2000
LEVEL = 0.95


def _group_resamples(groups: np.ndarray, n_resamples: int, seed: int):
    names, members = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    return members, rng.integers(0, len(names), size=(n_resamples, len(names))), len(names)


def _group_sums(values: np.ndarray, members: np.ndarray, n_groups: int):
    sums = np.bincount(members, weights=values, minlength=n_groups)
    counts = np.bincount(members, minlength=n_groups).astype(float)
    return sums, counts


def _interval(estimates: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(
    values, groups, n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (one per image), resampling groups.

    One group: the interval is the mean itself (nothing to resample). No values: (nan,
    nan), as the mean itself is undefined.
    """
    values = np.asarray(values, float)
    if values.size == 0:
        return float("nan"), float("nan")
    members, draws, n_groups = _group_resamples(groups, n_resamples, seed)
    sums, counts = _group_sums(values, members, n_groups)
    means = sums[draws].sum(1) / counts[draws].sum(1)
    return _interval(means, level)


def paired_difference(
    a, b, groups, n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> tuple[float, float, float]:
    """Mean of a - b over the same images, and its interval resampling groups: the
    difference between two recipes, with the images' own difficulty cancelled."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    if diff.size == 0:
        return float("nan"), float("nan"), float("nan")
    low, high = bootstrap_mean(diff, groups, n_resamples, seed, level)
    return float(diff.mean()), low, high
