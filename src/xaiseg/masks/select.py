"""Which labelled images with the finding teach the segmenter: a recipe's ``select``.

A pseudo-mask is only as good as the map it is cut from, and the maps miss the lesion
outright on a share of the images. Each mask gets a score of how clearly it stands out
in its own combined map (no ground truth); the masks of the train split's images with
the finding that score below a cut are left out (all ``IGNORE``), the cut keeping the
share ``keep`` of them. The same cut applies to the val split, whose pseudo-masks
choose the segmenter's epoch. Scores, per image:

- ``contrast``: the map's mean inside the mask over its mean outside it;
- ``mass``: the share of the map's total inside the mask.

An empty mask scores ``-inf``: an image the recipe found nothing on is left out anyway.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xaiseg.errors import XaisegError


def mask_contrast(mask: np.ndarray, combined: np.ndarray) -> float:
    """Mean of ``combined`` inside ``mask`` over its mean outside (``inf`` if the map
    is zero everywhere outside a non-empty mask)."""
    if not mask.any():
        return -np.inf
    if mask.all():
        return 1.0  # nothing outside to stand out from
    outside = float(combined[~mask].mean())
    return float(combined[mask].mean()) / outside if outside > 0 else np.inf


def mask_mass(mask: np.ndarray, combined: np.ndarray) -> float:
    """The share of ``combined``'s total that lies inside ``mask``."""
    total = float(combined.sum())
    if not mask.any() or total <= 0:
        return -np.inf
    return float(combined[mask].sum()) / total


SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "contrast": mask_contrast,
    "mass": mask_mass,
}


def score_function(score: str, where: str = "select") -> Callable[[np.ndarray, np.ndarray], float]:
    """The score named ``score``; an unknown name is an error naming it and ``where``."""
    if score not in SCORES:
        raise XaisegError(f"{where}: score {score!r} is not one of {sorted(SCORES)}")
    return SCORES[score]


def mask_score(score: str, mask: np.ndarray, combined: np.ndarray) -> float:
    """``score`` of a binary mask in its own combined map."""
    return score_function(score)(mask, combined)


def selection_cut(scores: np.ndarray, keep: float) -> float:
    """The score at or above which the share ``keep`` of ``scores`` lies (the lowest
    score for ``keep`` 1; ``-inf`` when there are none, so nothing is left out)."""
    if not 0 < keep <= 1:
        raise XaisegError(f"select: keep {keep} must lie in (0, 1]")
    finite = np.sort(np.asarray(scores, float)[np.isfinite(scores)])[::-1]
    if not len(finite):
        return -np.inf
    n_kept = max(1, int(np.ceil(keep * len(finite))))
    return float(finite[n_kept - 1])
