"""Snap a mask to superpixels of the image (SLIC, scikit-image): a superpixel is lesion
when at least ``share`` of its pixels are in the rule's mask.

A coarse map's edge cuts across tissue; a superpixel follows the image's own edges, so
the pooled mask keeps the map's decision and the image's outline. N-dimensional.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from xaiseg.masks.refine.base import RefineStep


@dataclass(frozen=True)
class SuperpixelsOptions:
    size: int = 64  # mean superpixel size in pixels (voxels in 3D)
    compactness: float = 0.1  # SLIC's: low follows intensity, high makes squares
    share: float = 0.5
    image_sigma: float = 1.0


class Superpixels(RefineStep):
    Options = SuperpixelsOptions

    def __call__(self, mask, saliency, image) -> np.ndarray:
        if not mask.any():
            return mask
        segments = self.segments(image)
        inside = ndimage.mean(mask, labels=segments, index=np.arange(segments.max() + 1))
        return np.asarray(inside)[segments] >= self.options.share

    def segments(self, image: np.ndarray) -> np.ndarray:
        """Superpixel labels (*spatial) from 0, of the image (C, *spatial)."""
        from skimage.segmentation import slic

        n_segments = max(1, int(np.prod(image.shape[1:])) // self.options.size)
        return slic(
            np.asarray(image, np.float64),
            n_segments=n_segments,
            compactness=self.options.compactness,
            sigma=self.options.image_sigma,
            channel_axis=0,
            start_label=0,
            enforce_connectivity=True,
        )
