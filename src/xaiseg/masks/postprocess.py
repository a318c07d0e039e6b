"""Clean a binary mask: drop specks, fill holes."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def clean_mask(mask: np.ndarray, min_size: int = 0, fill_holes: bool = True) -> np.ndarray:
    if fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    if min_size > 0 and mask.any():
        labels, n = ndimage.label(mask)
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(sizes >= min_size))
    return mask.astype(bool)
