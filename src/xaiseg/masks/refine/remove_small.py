"""Drop connected components smaller than ``min_size`` pixels (voxels in 3D)."""

from dataclasses import dataclass

import numpy as np

from xaiseg.masks.refine.base import RefineStep, components


@dataclass(frozen=True)
class RemoveSmallOptions:
    min_size: int = 4


class RemoveSmall(RefineStep):
    Options = RemoveSmallOptions

    def __call__(self, mask, saliency, image) -> np.ndarray:
        if not mask.any():
            return mask
        labels, sizes = components(mask)
        return np.isin(labels, 1 + np.flatnonzero(sizes >= self.options.min_size))
