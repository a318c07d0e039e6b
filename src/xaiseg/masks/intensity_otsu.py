"""Otsu on saliency x image intensity: a coarse map refined by the image itself.

Lesions in FLAIR-like images are brighter than their surroundings, so weighting the
map by intensity pulls a blob that spills around a lesion back onto it.
"""

import numpy as np

from xaiseg.masks.base import MaskRule, otsu_mask


class IntensityOtsu(MaskRule):
    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        channel = int(self.options.get("channel", 0))
        weighted = saliency * image[channel]
        # Otsu over the salient region only: the dark background would otherwise
        # claim the "low" class and leave every salient pixel in the mask.
        region = saliency > float(self.options.get("min_saliency", 0.1))
        if region.sum() < 2:
            return np.zeros(saliency.shape, bool)
        mask = np.zeros(saliency.shape, bool)
        mask[region] = otsu_mask(weighted[region])
        return mask
