"""Otsu's threshold on the saliency map alone (the plain recipe's rule)."""

import numpy as np

from xaiseg.masks.base import MaskRule, otsu_mask


class Otsu(MaskRule):
    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        return otsu_mask(saliency)
