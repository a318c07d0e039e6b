"""A mask rule turns one normalised map (and its image) into a binary mask."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class MaskRule(ABC):
    def __init__(self, **options) -> None:
        self.options = options

    @abstractmethod
    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Map (H, W) in [0, 1] and image (C, H, W) in [0, 1] -> bool mask (H, W)."""


def otsu_mask(values: np.ndarray) -> np.ndarray:
    """Otsu's threshold (scikit-image); a constant map gives an empty mask."""
    from skimage.filters import threshold_otsu

    if np.ptp(values) == 0:
        return np.zeros(values.shape, bool)
    return values > threshold_otsu(values)
