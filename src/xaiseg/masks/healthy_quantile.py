"""A threshold calibrated on images without the finding: the pixels whose evidence
exceeds the ``quantile`` of what healthy images show.

Needs no mask: at most ``1 - quantile`` of healthy pixels are marked, whatever the
map's scale, so it suits maps whose values mean something across images (the
counterfactual residual with ``normalize: none``) and peak-normalised maps alike.
"""

from dataclasses import dataclass

import numpy as np

from xaiseg.errors import XaisegError
from xaiseg.masks.base import MaskRule


@dataclass(frozen=True)
class HealthyQuantileOptions:
    quantile: float = 0.95


class HealthyQuantile(MaskRule):
    Options = HealthyQuantileOptions
    needs_reference = True

    def fit(self, healthy_values: np.ndarray) -> None:
        if healthy_values.size == 0:
            raise XaisegError(
                "healthy_quantile: the train split holds no image without the finding"
            )
        self.threshold = float(np.quantile(healthy_values, self.options.quantile))

    def __call__(self, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        if not hasattr(self, "threshold"):
            raise XaisegError("healthy_quantile: fit() on healthy images before use")
        return saliency > self.threshold
