"""Turn raw signed maps into [0, 1] evidence maps: the explicit normalisation step."""

from __future__ import annotations

import torch
from monai.transforms import GaussianSmooth


def normalize_maps(
    raw: torch.Tensor, smooth_sigma: float = 0.0, eps: float = 1e-12, peak: bool = True
) -> torch.Tensor:
    """Positive evidence only, optionally smoothed, divided by each map's maximum.

    ``raw`` is (N, 1, *spatial). A map with no positive evidence becomes all zeros.
    ``peak=False`` keeps the values themselves, for maps comparable across images.
    Pixel-level maps (Integrated Gradients) are speckled, so a small Gaussian turns
    them into regions before thresholding.
    """
    maps = raw.clamp(min=0).float()
    if smooth_sigma > 0 and len(maps):
        smoother = GaussianSmooth(sigma=smooth_sigma)
        maps = torch.stack([torch.as_tensor(smoother(m)) for m in maps])
    if not peak:
        return maps
    top = maps.flatten(1).amax(1).view(-1, *([1] * (maps.ndim - 1)))
    return torch.where(top > eps, maps / top.clamp(min=eps), torch.zeros_like(maps))
