"""Dictionary datasets with MONAI augmentation for both trainers."""

from __future__ import annotations

import torch
from monai.data import Dataset, MetaTensor
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
)


def augmentation(keys: list[str], mask_keys: list[str] | None = None) -> Compose:
    """Flips, 90-degree turns, small affine, contrast and noise; masks stay nearest."""
    mask_keys = mask_keys or []
    modes = ["bilinear" if k not in mask_keys else "nearest" for k in keys]
    return Compose(
        [
            RandFlipd(keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys, prob=0.5, spatial_axis=1),
            RandRotate90d(keys, prob=0.5),
            RandAffined(
                keys,
                prob=0.5,
                rotate_range=0.3,
                scale_range=0.1,
                translate_range=4,
                mode=modes,
                padding_mode="zeros",
            ),
            RandAdjustContrastd("image", prob=0.3, gamma=(0.8, 1.25)),
            RandGaussianNoised("image", prob=0.3, std=0.02),
        ]
    )


def dict_dataset(tensors: dict[str, torch.Tensor], transform: Compose | None) -> Dataset:
    n = len(next(iter(tensors.values())))
    items = [{k: v[i] for k, v in tensors.items()} for i in range(n)]
    return Dataset(items, transform=transform)


def seeded_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def plain(tensor: torch.Tensor) -> torch.Tensor:
    """Drop MONAI metadata so losses and metrics see an ordinary tensor."""
    return tensor.as_tensor() if isinstance(tensor, MetaTensor) else tensor
