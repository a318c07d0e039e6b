"""Dictionary datasets with MONAI augmentation for both trainers, N-dimensional."""

from __future__ import annotations

import torch
from monai.data import Dataset
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    ToTensord,
)


def augmentation(
    keys: list[str],
    spatial_dims: int = 2,
    mask_keys: list[str] | None = None,
    image_key: str = "image",
) -> Compose:
    """Flips, 90-degree turns, small affine (all ``keys``; masks stay nearest), then
    contrast and noise on ``image_key``."""
    mask_keys = mask_keys or []
    modes = ["bilinear" if k not in mask_keys else "nearest" for k in keys]
    flips = [RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(spatial_dims)]
    return Compose(
        [
            *flips,
            RandRotate90d(keys, prob=0.5),
            RandAffined(
                keys,
                prob=0.5,
                rotate_range=[0.3] * (1 if spatial_dims == 2 else 3),
                scale_range=[0.1] * spatial_dims,
                translate_range=[4] * spatial_dims,
                mode=modes,
                padding_mode="zeros",
            ),
            RandAdjustContrastd(image_key, prob=0.3, gamma=(0.8, 1.25)),
            RandGaussianNoised(image_key, prob=0.3, std=0.02),
            # Plain tensors out: the default collate and the losses need no metadata.
            ToTensord(keys, track_meta=False),
        ]
    )


def dict_dataset(tensors: dict[str, torch.Tensor], transform: Compose | None) -> Dataset:
    n = len(next(iter(tensors.values())))
    items = [{k: v[i] for k, v in tensors.items()} for i in range(n)]
    return Dataset(items, transform=transform)


def seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
