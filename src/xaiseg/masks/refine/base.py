"""A refinement step: a small callable with typed options, N-dimensional."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy import ndimage

from xaiseg.settings import Configurable


class RefineStep(Configurable, ABC):
    @abstractmethod
    def __call__(self, mask: np.ndarray, saliency: np.ndarray, image: np.ndarray) -> np.ndarray:
        """bool mask (*spatial), map (*spatial), image (C, *spatial) -> bool mask."""


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected-component labels and each component's size (index 0 = label 1)."""
    labels, n = ndimage.label(mask)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    return labels, np.asarray(sizes)
