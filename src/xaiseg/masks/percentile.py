"""The top ``percent`` of the map's pixels, for lesions of known typical size."""

import numpy as np

from xaiseg.masks.base import MaskRule


class TopPercent(MaskRule):
    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        percent = float(self.options.get("percent", 5.0))
        if saliency.max() <= 0:
            return np.zeros(saliency.shape, bool)
        return (saliency >= np.percentile(saliency, 100 - percent)) & (saliency > 0)
