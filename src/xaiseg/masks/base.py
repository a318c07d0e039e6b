"""A mask rule turns one normalised map (and its image) into a binary mask.

Rules work in any number of spatial dimensions; their options are a dataclass, so a
misspelt option is an error that names it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from xaiseg.settings import Configurable


class MaskRule(Configurable, ABC):
    # Rules calibrated on the train split's images without the finding set this and
    # implement ``fit(values)``, given those images' combined map values.
    needs_reference = False

    def fit(self, healthy_values: np.ndarray) -> None:
        """Calibrate on healthy images' map values; most rules need nothing."""

    @abstractmethod
    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Map (*spatial) in [0, 1] and image (C, *spatial) in [0, 1] -> bool (*spatial)."""


def otsu_mask(values: np.ndarray) -> np.ndarray:
    """Otsu's threshold (scikit-image); a constant map gives an empty mask."""
    from skimage.filters import threshold_otsu

    if values.size == 0 or np.ptp(values) == 0:
        return np.zeros(values.shape, bool)
    return values > threshold_otsu(values)
