"""Training batches made where the network trains: the train split moved to the device
once, each batch augmented there in one batched pass, so that a GPU is not fed by a
few CPU workers (at 128 px, MONAI in one worker makes about 250 images a second).

The same kinds and ranges of draws as ``train.data.augmentation`` (flips, a quarter
turn, a small affine; contrast, noise; hide-and-seek), applied as one grid sample per
image: the two paths learn alike, not to the byte. Every draw comes from generators
seeded by the epoch, so an epoch's batches depend on (seed, epoch) and the device alone.
N-dimensional: 2D images and 3D volumes alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from xaiseg.errors import XaisegError

AUGMENT_ON = ("auto", "workers", "device")
ROTATE, SCALE, SHIFT_PX = 0.3, 0.1, 4.0  # as train.data.augmentation's RandAffined
AFFINE_P, CONTRAST_P, NOISE_P = 0.5, 0.3, 0.3
GAMMA, NOISE_STD = (0.8, 1.25), 0.02


def on_device(setting: str, device: torch.device) -> bool:
    """Whether batches are augmented on the device: ``auto`` does so on CUDA only (the
    CPU keeps MONAI in workers, whose results are recorded to the byte)."""
    if setting not in AUGMENT_ON:
        raise XaisegError(f"augment_on {setting!r}: choose one of {list(AUGMENT_ON)}")
    return setting == "device" or (setting == "auto" and device.type == "cuda")


class DeviceBatches:
    """Shuffled, augmented batches of a dict of tensors held on ``device``; iterated like
    a DataLoader. ``spatial_keys`` are warped together (``mask_keys`` nearest, the rest
    bilinear); contrast, noise and hidden patches touch ``image_key`` alone."""

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        batch_size: int,
        seed: int,
        device: torch.device,
        *,
        spatial_keys: Sequence[str],
        mask_keys: Sequence[str] = (),
        image_key: str = "image",
        hide_patches: float = 0.0,
        drop_last: bool = False,
        flip_axes: Sequence[int] | None = None,
        quarter_turns: bool = True,
    ) -> None:
        # Held on the device when they fit, else on the CPU and copied batch by batch.
        self.home = device if fits_on(device, tensors) else torch.device("cpu")
        self.tensors = {k: v.to(self.home) for k, v in tensors.items()}
        self.size = len(self.tensors[image_key])
        self.batch_size, self.drop_last, self.device = batch_size, drop_last, device
        self.spatial_keys, self.mask_keys = tuple(spatial_keys), tuple(mask_keys)
        self.image_key, self.hide_patches = image_key, hide_patches
        self.generator = torch.Generator().manual_seed(seed)  # small draws, on the CPU
        self.flip_axes, self.quarter_turns = flip_axes, quarter_turns

    def reseed(self, value: int) -> None:
        """Called by the training loop before each epoch."""
        self.generator.manual_seed(value)

    def __len__(self) -> int:
        whole, rest = divmod(self.size, self.batch_size)
        return whole + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = torch.randperm(self.size, generator=self.generator).to(self.home)
        for number in range(len(self)):
            pick = order[number * self.batch_size : (number + 1) * self.batch_size]
            batch = {k: v[pick].to(self.device, non_blocking=True) for k, v in self.tensors.items()}
            yield self.augment(batch)

    def augment(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = batch[self.image_key]
        n = len(image)
        # The noise is drawn on the device, from a seed drawn here.
        noise_gen = torch.Generator(self.device).manual_seed(
            int(torch.randint(2**62, (1,), generator=self.generator))
        )
        theta = random_affine(
            n, image.shape[2:], self.generator, self.flip_axes, self.quarter_turns
        ).to(image)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        for key in self.spatial_keys:
            mode = "nearest" if key in self.mask_keys else "bilinear"
            batch[key] = F.grid_sample(
                batch[key], grid, mode=mode, padding_mode="zeros", align_corners=False
            )
        image = random_contrast(batch[self.image_key], self.generator)
        image = random_noise(image, self.generator, noise_gen)
        if self.hide_patches:
            image = hide_patches(image, self.hide_patches, self.generator, noise_gen)
        batch[self.image_key] = image
        return batch


def _chance(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) < p


def _uniform(shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def random_affine(
    n: int,
    spatial: Sequence[int],
    generator: torch.Generator,
    flip_axes: Sequence[int] | None = None,
    quarter_turns: bool = True,
) -> torch.Tensor:
    """(n, d, d + 1) matrices for ``F.affine_grid`` in its normalised coordinates (the
    last spatial axis first): a flip per axis of ``flip_axes`` (spatial axes, None: all;
    p 0.5 each), a quarter turn of the first two axes (p 0.5, if ``quarter_turns``), and
    with p 0.5 a rotation (up to 0.3 rad about each axis), a scale (1 +- 0.1 per axis)
    and a shift (up to 4 pixels per axis)."""
    d = len(spatial)
    # Every draw is made whatever is allowed, so the default's stream is unchanged.
    flipped = _chance(n * d, 0.5, generator).view(n, d)
    if flip_axes is not None:
        allowed = torch.zeros(d, dtype=torch.bool)
        allowed[[d - 1 - axis for axis in flip_axes]] = True  # coordinates run backwards
        flipped &= allowed
    linear = torch.diag_embed(torch.where(flipped, -1.0, 1.0))
    turn = torch.eye(d).repeat(n, 1, 1)
    quarter = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    turn[_chance(n, 0.5, generator) & quarter_turns, :2, :2] = quarter
    linear = turn @ linear
    warped = _chance(n, AFFINE_P, generator)
    angles = _uniform((n, 1 if d == 2 else 3), -ROTATE, ROTATE, generator)
    scale = torch.diag_embed(_uniform((n, d), 1 - SCALE, 1 + SCALE, generator))
    # Pixels to normalised units: an axis of s pixels spans 2.
    sizes = torch.tensor([float(s) for s in reversed(spatial)])
    shift = _uniform((n, d), -SHIFT_PX, SHIFT_PX, generator) * 2 / sizes
    affine = rotation(angles, d) @ scale
    linear = torch.where(warped[:, None, None], affine @ linear, linear)
    shift = torch.where(warped[:, None], shift, torch.zeros_like(shift))
    return torch.cat([linear, shift[..., None]], dim=2)


def rotation(angles: torch.Tensor, d: int) -> torch.Tensor:
    """(n, d, d) rotations: one angle in 2D, three (one per axis, composed) in 3D."""
    n = len(angles)
    out = torch.eye(d).repeat(n, 1, 1)
    planes = [(0, 1)] if d == 2 else [(1, 2), (0, 2), (0, 1)]
    for k, (a, b) in enumerate(planes):
        cos, sin = torch.cos(angles[:, k]), torch.sin(angles[:, k])
        step = torch.eye(d).repeat(n, 1, 1)
        step[:, a, a], step[:, a, b], step[:, b, a], step[:, b, b] = cos, -sin, sin, cos
        out = step @ out
    return out


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like).view(-1, *[1] * (like.ndim - 1))


def random_contrast(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """With p 0.3, each image's intensities raised to a gamma in [0.8, 1.25] within its
    own range (MONAI's RandAdjustContrast)."""
    n = len(image)
    gamma = _per_image(_uniform(n, *GAMMA, generator), image)
    chosen = _per_image(_chance(n, CONTRAST_P, generator), image).bool()
    flat = image.flatten(1)
    low = _per_image(flat.min(1).values, image)
    span = _per_image(flat.max(1).values, image) - low
    adjusted = ((image - low) / (span + 1e-7)).clamp(min=0) ** gamma * span + low
    return torch.where(chosen, adjusted, image)


def random_noise(
    image: torch.Tensor, generator: torch.Generator, noise_gen: torch.Generator
) -> torch.Tensor:
    """With p 0.3, Gaussian noise of a standard deviation drawn from [0, 0.02]."""
    n = len(image)
    std = _uniform(n, 0.0, NOISE_STD, generator) * _chance(n, NOISE_P, generator)
    noise = torch.randn(image.shape, generator=noise_gen, device=image.device, dtype=image.dtype)
    return image + noise * _per_image(std, image)


def hide_patches(
    image: torch.Tensor, p: float, generator: torch.Generator, noise_gen: torch.Generator
) -> torch.Tensor:
    """With probability ``p``, 8 to 16 squares (cubes) of an eighth of the shortest side
    filled with noise in the image's own range (hide-and-seek, MONAI's
    RandCoarseDropout with ``fill_value=None``)."""
    n, spatial = len(image), image.shape[2:]
    side = max(1, min(spatial) // 8)
    holes = torch.randint(8, 17, (n,), generator=generator)
    active = (torch.arange(16) < holes[:, None]) & _chance(n, p, generator)[:, None]
    covered = active.to(image.device).view(n, 16, *[1] * len(spatial))
    for axis, length in enumerate(spatial):
        start = torch.randint(0, length - side + 1, (n, 16), generator=generator)
        shape = [1] * (len(spatial) + 2)
        shape[axis + 2] = length
        coords = torch.arange(length).view(shape)
        start = start.view(n, 16, *[1] * len(spatial)).to(coords)
        covered = covered & ((coords >= start) & (coords < start + side)).to(image.device)
    covered = covered.any(1, keepdim=True)  # (n, 1, *spatial)
    flat = image.flatten(1)
    low = _per_image(flat.min(1).values, image)
    span = _per_image(flat.max(1).values, image) - low
    fill = low + span * torch.rand(image.shape, generator=noise_gen, device=image.device)
    return torch.where(covered, fill.to(image.dtype), image)


def fits_on(device: torch.device, tensors: dict[str, torch.Tensor], share: float = 0.25) -> bool:
    """Whether ``tensors`` take at most ``share`` of the device's free memory."""
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return sum(t.numel() * t.element_size() for t in tensors.values()) <= share * free
