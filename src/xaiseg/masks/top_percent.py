"""The top ``percent`` of the map's pixels, for lesions of known typical size."""

from dataclasses import dataclass

import numpy as np

from xaiseg.masks.base import MaskRule


@dataclass(frozen=True)
class TopPercentOptions:
    percent: float = 5.0


class TopPercent(MaskRule):
    Options = TopPercentOptions

    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        if saliency.max() <= 0:
            return np.zeros(saliency.shape, bool)
        cut = np.percentile(saliency, 100 - self.options.percent)
        return (saliency >= cut) & (saliency > 0)
