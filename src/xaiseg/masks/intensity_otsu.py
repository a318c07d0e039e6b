"""Otsu on saliency x image intensity: a coarse map refined by the image itself.

Lesions that are brighter (FLAIR) or darker (ultrasound cysts) than their surroundings:
weighting the map by the chosen channel's intensity, or its inverse, pulls a blob that
spills around a lesion back onto it. ``direction: auto`` decides per image: dark when
the map's evidence lies on pixels darker than the imaged tissue outside it.
"""

from dataclasses import dataclass

import numpy as np

from xaiseg.errors import XaisegError
from xaiseg.masks.base import MaskRule, otsu_mask

AIR = 0.02  # normalised intensity at or below which a pixel is outside the body


@dataclass(frozen=True)
class IntensityOptions:
    channel: int = 0
    direction: str = "bright"  # or "dark", or "auto" (per image)
    min_saliency: float = 0.1


DIRECTIONS = ("bright", "dark", "auto")


class IntensityOtsu(MaskRule):
    Options = IntensityOptions

    def __init__(self, **options) -> None:
        super().__init__(**options)
        if self.options.direction not in DIRECTIONS:
            raise XaisegError(
                f"intensity_otsu: direction {self.options.direction!r} is not one of {DIRECTIONS}"
            )

    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        intensity = image[self.options.channel]
        region = saliency > self.options.min_saliency
        if self.direction(saliency, intensity, region) == "dark":
            intensity = 1.0 - intensity
        weighted = saliency * intensity
        # Otsu over the salient region only: the dark background would otherwise
        # claim the "low" class and leave every salient pixel in the mask.
        mask = np.zeros(saliency.shape, bool)
        if region.sum() >= 2:
            mask[region] = otsu_mask(weighted[region])
        return mask

    def direction(self, saliency: np.ndarray, intensity: np.ndarray, region: np.ndarray) -> str:
        """The configured direction; for ``auto``, the evidence-weighted mean intensity
        of the salient region against the mean of imaged pixels outside it (pixels at
        the very bottom of the range are outside the body: air, a probe's black frame)."""
        if self.options.direction != "auto":
            return self.options.direction
        outside = ~region & (intensity > AIR)
        if not region.any() or not outside.any():
            return "bright"
        inside = float(np.average(intensity[region], weights=saliency[region]))
        return "dark" if inside < float(intensity[outside].mean()) else "bright"
