"""Keep the mask inside the imaged body, ``margin`` pixels in from its edge.

The body is the largest connected region where any channel is above ``level``, holes
filled. Maps that compare an image with a reconstruction flare at the body's rim (a
scalp, a skin line, a probe's edge), where no lesion of interest lies.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from xaiseg.masks.refine.base import RefineStep, components


@dataclass(frozen=True)
class InsideForegroundOptions:
    level: float = 0.05
    margin: int = 3


class InsideForeground(RefineStep):
    Options = InsideForegroundOptions

    def __call__(self, mask, saliency, image) -> np.ndarray:
        body = (image > self.options.level).any(axis=0)
        if not body.any():
            return mask
        labels, sizes = components(body)
        body = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
        if self.options.margin > 0:
            body = ndimage.binary_erosion(body, iterations=self.options.margin)
        return mask & body
