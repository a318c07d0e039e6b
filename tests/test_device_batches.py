"""Training batches augmented on the device (here the CPU stands in for a GPU)."""

import math

import pytest
import torch
import torch.nn.functional as F

from xaiseg.errors import XaisegError
from xaiseg.settings import SegmenterSettings
from xaiseg.train.data import training_batches
from xaiseg.train.device_batches import (
    DeviceBatches,
    hide_patches,
    on_device,
    random_affine,
    random_contrast,
    rotation,
)
from xaiseg.train.loop import reseed_epoch

CPU = torch.device("cpu")


def _warp(image: torch.Tensor, theta: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode=mode, align_corners=False)


def test_auto_augments_on_the_device_on_cuda_only_and_refuses_unknown_places():
    assert on_device("auto", torch.device("cuda")) and not on_device("auto", CPU)
    assert on_device("device", CPU) and not on_device("workers", torch.device("cuda"))
    with pytest.raises(XaisegError, match="augment_on 'gpu'"):
        on_device("gpu", CPU)
    settings = SegmenterSettings(batch_size=2, augment_on="device")
    made = training_batches(
        {"image": torch.zeros(4, 1, 8, 8)}, settings, CPU, spatial_keys=["image"]
    )
    assert isinstance(made, DeviceBatches)


def test_flips_and_quarter_turns_move_whole_pixels_exactly():
    image = torch.arange(36.0).view(1, 1, 6, 6)
    flip_x = torch.tensor([[[-1.0, 0, 0], [0, 1, 0]]])
    assert torch.equal(_warp(image, flip_x), image.flip(-1))
    assert torch.allclose(_warp(image, flip_x, "bilinear"), image.flip(-1), atol=1e-5)
    quarter = torch.cat([rotation(torch.tensor([[torch.pi / 2]]), 2), torch.zeros(1, 2, 1)], 2)
    turned = _warp(image, quarter.round())
    assert torch.equal(turned, torch.rot90(image, 1, (2, 3))) or torch.equal(
        turned, torch.rot90(image, -1, (2, 3))
    )
    shift = torch.tensor([[[1.0, 0, 2 / 6], [0, 1, 0]]])  # one pixel of six: 2/6 units
    assert torch.equal(_warp(image, shift)[..., :5], image[..., 1:])


def test_affine_draws_stay_in_their_ranges():
    theta = random_affine(4000, (32, 32), torch.Generator().manual_seed(0))
    linear, shift = theta[:, :, :2], theta[:, :, 2]
    singular = torch.linalg.svdvals(linear)  # rotation and flips keep lengths: the scale
    assert singular.min() >= 0.9 - 1e-6 and singular.max() <= 1.1 + 1e-6
    assert shift.abs().max() <= 4 * 2 / 32 + 1e-6
    plain = (shift == 0).all(1) & torch.isclose(singular, torch.ones(1)).all(1)
    assert 0.4 < plain.float().mean() < 0.6  # the affine's chance is one half
    assert theta.shape == (4000, 2, 3)
    assert random_affine(3, (4, 8, 8), torch.Generator()).shape == (3, 3, 4)


def test_contrast_is_a_gamma_within_each_images_own_range():
    image = torch.tensor([0.0, 0.25, 1.0, 2.0]).view(1, 1, 2, 2)
    g = torch.Generator().manual_seed(0)
    out = random_contrast(image.repeat(200, 1, 1, 1), g)
    changed = ~(out == image).flatten(1).all(1)
    assert 0.2 < changed.float().mean() < 0.4  # chance 0.3
    one = out[changed][0].flatten().tolist()
    assert one[0] == 0 and one[3] == pytest.approx(2.0)  # the range is kept
    gamma = math.log(one[1] / 2) / math.log(0.25 / 2)  # ((x - 0) / 2) ** g * 2
    assert 0.8 <= gamma <= 1.25
    assert one[2] == pytest.approx(2 * 0.5**gamma, rel=1e-5)


def test_hidden_patches_are_squares_of_an_eighth_filled_within_the_range():
    image = torch.full((3, 1, 64, 64), 0.5)
    image[:, :, 0, 0], image[:, :, 0, 1] = 0.0, 1.0
    g = torch.Generator()
    assert torch.equal(hide_patches(image, 0.0, g.manual_seed(1), g), image)
    hidden = hide_patches(image, 1.0, torch.Generator().manual_seed(1), torch.Generator())
    covered = hidden != image
    share = covered.float().flatten(1).mean(1)
    assert (share > 0).all() and (share <= 16 * 64 / 4096 + 1e-9).all()  # at most 16 of 8x8
    assert hidden.min() >= 0 and hidden.max() <= 1


def _batches(seed: int = 0, **options) -> DeviceBatches:
    mask = torch.zeros(10, 1, 16, 16)
    mask[:, :, 4:12, 6:10] = 1
    mask[:, :, 0, :] = 2  # an ignored row
    image = (mask == 1) * 0.5 + 0.1
    return DeviceBatches(
        {"image": image, "mask": mask, "index": torch.arange(10)},
        4,
        seed,
        CPU,
        spatial_keys=["image", "mask"],
        mask_keys=["mask"],
        **options,
    )


def test_an_epoch_visits_every_image_once_and_warps_images_with_their_masks():
    batches = _batches()
    reseed_epoch(batches, 0, 1)
    epoch = list(batches)
    assert len(batches) == len(epoch) == 3 and [len(b["index"]) for b in epoch] == [4, 4, 2]
    assert sorted(torch.cat([b["index"] for b in epoch]).tolist()) == list(range(10))
    for b in epoch:
        assert set(b["mask"].unique().tolist()) <= {0.0, 1.0, 2.0}  # nearest: labels kept
        # Where the image is its bright lesion, the warped mask says lesion.
        core = b["image"] > 0.5
        assert (b["mask"][core] == 1).float().mean() > 0.9
    assert len(_batches(drop_last=True)) == 2


def test_an_epochs_batches_follow_the_seed_and_epoch_alone():
    def epoch(seed: int, number: int) -> list[torch.Tensor]:
        batches = _batches(seed)
        reseed_epoch(batches, seed, number)
        return [b["image"] for b in batches]

    first = epoch(0, 3)
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(0, 3), strict=True))
    assert not torch.equal(first[0], epoch(0, 4)[0])
    assert not torch.equal(first[0], epoch(1, 3)[0])


def test_a_segmenter_trains_with_device_batches(data_dir, tmp_path):
    from xaiseg.train.segmenter import train_segmenter

    settings = SegmenterSettings(
        epochs=2, batch_size=4, augment_on="device",
        network_options={"channels": [4, 8], "strides": [2], "num_res_units": 1},
    )  # fmt: skip
    summary = train_segmenter(data_dir, tmp_path / "seg", settings)
    assert len(summary["history"]) == 2 and summary["n_train"] > 0
    again = train_segmenter(data_dir, tmp_path / "again", settings)
    assert again["history"][-1]["loss"] == summary["history"][-1]["loss"]  # seeded


def test_a_kept_orientation_mirrors_columns_only_and_never_turns():
    """``flip_axes: [1]`` (columns: the last normalised coordinate is the first) and no
    quarter turns: the unwarped draws are the identity or the left-right mirror; the
    default's draws are unchanged (the same stream, every flip and turn allowed)."""
    kept = random_affine(2000, (16, 16), torch.Generator().manual_seed(0), [1], False)
    every = random_affine(2000, (16, 16), torch.Generator().manual_seed(0))
    plain = (kept[:, :, 2] == 0).all(1) & (kept[:, 1, 0] == 0)  # no shift, no rotation
    mirror = torch.tensor([[-1.0, 0], [0, 1]])
    identity = torch.eye(2)
    linear = kept[plain, :, :2]
    is_mirror = (linear == mirror).all((1, 2))
    assert ((linear == identity).all((1, 2)) | is_mirror).all()
    assert 0.4 < is_mirror.float().mean() < 0.6
    assert torch.equal(random_affine(2000, (16, 16), torch.Generator().manual_seed(0), None), every)
    assert torch.equal(
        random_affine(2000, (16, 16), torch.Generator().manual_seed(0), [0, 1], True), every
    )
    warped_rows = _warp(torch.arange(16.0).view(1, 1, 4, 4).repeat(2000, 1, 1, 1), kept.round())
    top_row = warped_rows[plain.nonzero()[:, 0], 0, 0]
    assert (top_row.sort(-1).values == torch.arange(4.0)).all()  # the top stays on top
