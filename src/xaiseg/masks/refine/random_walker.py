"""Snap a coarse mask to the image's own edges with a random walker (scikit-image).

Seeds come from the map: pixels of the rule's mask at least ``foreground`` of the map's
peak are lesion, pixels outside the mask below ``background`` of the peak are not; the
walker labels every other pixel by the image's intensity edges (all channels, after a
Gaussian of ``image_sigma`` against speckle). Edges, not a direction: a dark cyst and a
bright FLAIR lesion are found alike. N-dimensional.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from xaiseg.masks.refine.base import RefineStep

LESION, BACKGROUND = 1, 2


@dataclass(frozen=True)
class RandomWalkerOptions:
    foreground: float = 0.7
    background: float = 0.2
    beta: float = 130.0  # skimage's: divided by 10 x the image's standard deviation
    image_sigma: float = 1.0


class RandomWalker(RefineStep):
    Options = RandomWalkerOptions

    def __call__(self, mask, saliency, image) -> np.ndarray:
        seeds = self.seeds(mask, saliency)
        if not ((seeds == LESION).any() and (seeds == BACKGROUND).any()):
            return mask  # nothing to walk between: keep the rule's answer
        from skimage.segmentation import random_walker

        data = np.asarray(image, np.float64)
        if self.options.image_sigma > 0:
            sigma = (0, *[self.options.image_sigma] * (data.ndim - 1))
            data = ndimage.gaussian_filter(data, sigma)
        if np.ptp(data) == 0:
            return mask
        walked = random_walker(
            data, seeds, beta=self.options.beta, mode="cg_j", channel_axis=0, tol=1e-4
        )
        return walked == LESION

    def seeds(self, mask: np.ndarray, saliency: np.ndarray) -> np.ndarray:
        """0 unknown, 1 lesion, 2 background, by the map's share of its own peak."""
        peak = float(saliency.max()) if saliency.size else 0.0
        seeds = np.zeros(mask.shape, np.int32)
        if peak <= 0 or not mask.any():
            return seeds
        level = saliency / peak
        seeds[mask & (level >= self.options.foreground)] = LESION
        seeds[~mask & (level < self.options.background)] = BACKGROUND
        return seeds
