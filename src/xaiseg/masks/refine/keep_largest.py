"""Keep the ``n`` largest connected components (most images hold one or two lesions).

``by`` says what "largest" weighs: ``size`` (pixels), ``mass`` (the map summed over the
component) or ``mean`` (the map's mean over it: the most salient component, however
small, rather than a wide faint one, such as the bright skin line of an ultrasound).
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from xaiseg.errors import XaisegError
from xaiseg.masks.refine.base import RefineStep, components

WEIGHTS = ("size", "mass", "mean")


@dataclass(frozen=True)
class KeepLargestOptions:
    n: int = 1
    by: str = "size"


class KeepLargest(RefineStep):
    Options = KeepLargestOptions

    def __init__(self, **options) -> None:
        super().__init__(**options)
        if self.options.by not in WEIGHTS:
            raise XaisegError(f"keep_largest: by {self.options.by!r} is not one of {WEIGHTS}")

    def __call__(self, mask, saliency, image) -> np.ndarray:
        if not mask.any():
            return mask
        labels, sizes = components(mask)
        weight = sizes
        if self.options.by != "size":
            index = np.arange(1, len(sizes) + 1)
            weight = ndimage.sum_labels(saliency, labels, index=index)
            if self.options.by == "mean":
                weight = weight / sizes
        keep = 1 + np.argsort(-np.asarray(weight), kind="stable")[: self.options.n]
        return np.isin(labels, keep)
