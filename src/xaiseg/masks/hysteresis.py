"""Hysteresis: the pixels above ``low`` that connect to a pixel above ``high``.

Keeps a lesion's faint rim when its core is confident, and drops faint blobs that
hold no confident pixel.
"""

from dataclasses import dataclass

import numpy as np
from skimage.filters import apply_hysteresis_threshold

from xaiseg.masks.base import MaskRule


@dataclass(frozen=True)
class HysteresisOptions:
    low: float = 0.3
    high: float = 0.7


class Hysteresis(MaskRule):
    Options = HysteresisOptions

    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        return apply_hysteresis_threshold(saliency, self.options.low, self.options.high)
