"""Keep the ``n`` largest connected components (most images hold one or two lesions)."""

from dataclasses import dataclass

import numpy as np

from xaiseg.masks.refine.base import RefineStep, components


@dataclass(frozen=True)
class KeepLargestOptions:
    n: int = 1


class KeepLargest(RefineStep):
    Options = KeepLargestOptions

    def __call__(self, mask, saliency, image) -> np.ndarray:
        if not mask.any():
            return mask
        labels, sizes = components(mask)
        keep = 1 + np.argsort(-sizes, kind="stable")[: self.options.n]
        return np.isin(labels, keep)
