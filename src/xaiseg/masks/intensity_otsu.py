"""Otsu on saliency x image intensity: a coarse map refined by the image itself.

Lesions that are brighter (FLAIR) or darker (ultrasound cysts) than their surroundings:
weighting the map by the chosen channel's intensity, or its inverse, pulls a blob that
spills around a lesion back onto it.
"""

from dataclasses import dataclass

import numpy as np

from xaiseg.masks.base import MaskRule, otsu_mask


@dataclass(frozen=True)
class IntensityOptions:
    channel: int = 0
    direction: str = "bright"  # or "dark"
    min_saliency: float = 0.1


class IntensityOtsu(MaskRule):
    Options = IntensityOptions

    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        intensity = image[self.options.channel]
        if self.options.direction == "dark":
            intensity = 1.0 - intensity
        weighted = saliency * intensity
        # Otsu over the salient region only: the dark background would otherwise
        # claim the "low" class and leave every salient pixel in the mask.
        region = saliency > self.options.min_saliency
        mask = np.zeros(saliency.shape, bool)
        if region.sum() >= 2:
            mask[region] = otsu_mask(weighted[region])
        return mask
