"""Dictionary datasets with MONAI augmentation for the trainers, N-dimensional, loaded
and augmented in DataLoader workers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.transforms import (
    Compose,
    Lambdad,
    RandAdjustContrastd,
    RandAffined,
    RandCoarseDropoutd,
    RandFlipd,
    RandGaussianNoised,
    RandRotate90d,
    ToTensord,
    apply_transform,
)
from torch.utils.data import DataLoader, Dataset

from xaiseg.settings import TrainingSettings
from xaiseg.train import distributed
from xaiseg.train.device_batches import DeviceBatches, on_device


def augmentation(
    keys: list[str],
    spatial_dims: int = 2,
    mask_keys: list[str] | None = None,
    image_key: str = "image",
    hide_patches: float = 0.0,
    side: int = 0,
    flip_axes: Sequence[int] | None = None,
    quarter_turns: bool = True,
) -> Compose:
    """Flips along ``flip_axes`` (None: every axis), 90-degree turns (unless
    ``quarter_turns`` is false), small affine (all ``keys``; masks stay nearest), then
    contrast and noise on ``image_key``, and with ``hide_patches`` (a probability) 8 to
    16 squares of an eighth of ``side`` filled with noise (hide-and-seek)."""
    mask_keys = mask_keys or []
    axes = range(spatial_dims) if flip_axes is None else flip_axes
    hide = [
        # The dropout writes in place: on a copy, never on the stored training image.
        Lambdad(image_key, torch.clone),
        RandCoarseDropoutd(
            image_key,
            holes=8,
            max_holes=16,
            spatial_size=max(1, side // 8),
            prob=hide_patches,
            fill_value=None,  # noise in the image's own range: no colour of its own
        ),
    ]
    modes = ["bilinear" if k not in mask_keys else "nearest" for k in keys]
    flips = [RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in axes]
    turns = [RandRotate90d(keys, prob=0.5)] if quarter_turns else []
    return Compose(
        [
            *flips,
            *turns,
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
            *(hide if hide_patches else []),
            # Plain tensors out: the default collate and the losses need no metadata.
            ToTensord(keys, track_meta=False),
        ]
    )


class SeededItems(Dataset):
    """Items of a dict of tensors, each augmented with its own random draws, seeded from
    the epoch's seed and the item's index alone: an epoch's batches are the same with
    any number of loader workers (each worker holds a copy of the transform, whose one
    shared stream would otherwise depend on which worker took which item)."""

    def __init__(self, tensors: dict[str, torch.Tensor], transform: Compose | None) -> None:
        n = len(next(iter(tensors.values())))
        self.items = [{k: v[i] for k, v in tensors.items()} for i in range(n)]
        self.transform = transform
        self.epoch_seed = 0  # set by the training loop before each epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        if self.transform is None:
            return item
        self.transform.set_random_state(item_seed(self.epoch_seed, index))
        return apply_transform(self.transform, item)


def item_seed(epoch_seed: int, index: int) -> int:
    return (epoch_seed * 1_000_003 + index) % 2**32


def dict_dataset(tensors: dict[str, torch.Tensor], transform: Compose | None) -> SeededItems:
    return SeededItems(tensors, transform)


def loader_workers() -> int:
    """The job's threads (``--threads``, torch's thread count): one runs the training
    step, the others load and augment."""
    return max(0, torch.get_num_threads() - 1)


def training_loader(
    dataset: Dataset, batch_size: int, seed: int, drop_last: bool = False
) -> DataLoader:
    """Shuffled batches, the order drawn from ``seed``; augmentation in worker
    processes (started each epoch, so that they see the epoch's seed). Under torchrun,
    this process's share of each batch."""
    generator = seeded_generator(seed)
    common = {
        "generator": generator,
        "num_workers": loader_workers(),
        "pin_memory": torch.cuda.is_available(),
    }
    if distributed.world_size() > 1:
        share = distributed.ShareOfBatches(len(dataset), batch_size, generator, drop_last)
        return DataLoader(dataset, batch_sampler=share, **common)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=drop_last, **common)


def seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def training_batches(
    tensors: dict[str, torch.Tensor],
    settings: TrainingSettings,
    device: torch.device,
    *,
    spatial_keys: list[str],
    mask_keys: list[str] | None = None,
    hide_patches: float = 0.0,
) -> DataLoader | DeviceBatches:
    """The trainers' augmented batches of ``settings.batch_size``: made on the device
    (``settings.augment_on``; CUDA by default, one process) or by MONAI in DataLoader
    workers (the CPU's default)."""
    batch_size, seed = settings.batch_size, settings.seed
    if on_device(settings.augment_on, device) and distributed.world_size() == 1:
        return DeviceBatches(
            tensors,
            batch_size,
            seed,
            device,
            spatial_keys=spatial_keys,
            mask_keys=mask_keys or (),
            hide_patches=hide_patches,
            flip_axes=settings.flip_axes,
            quarter_turns=settings.quarter_turns,
        )
    image = tensors["image"]
    transform = augmentation(
        spatial_keys,
        image.ndim - 2,
        mask_keys=mask_keys,
        hide_patches=hide_patches,
        side=min(image.shape[2:]),
        flip_axes=settings.flip_axes,
        quarter_turns=settings.quarter_turns,
    )
    return training_loader(dict_dataset(tensors, transform), batch_size, seed)
