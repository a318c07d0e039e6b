import numpy as np
import pytest
import torch

from xaiseg.errors import XaisegError
from xaiseg.masks import RULES
from xaiseg.masks.normalize import normalize_maps
from xaiseg.masks.refine import REFINERS


def test_normalize_keeps_positive_evidence_and_scales_to_one():
    raw = torch.tensor([[[[-4.0, 0.0], [1.0, 2.0]]], [[[-1.0, -2.0], [-3.0, -4.0]]]])
    out = normalize_maps(raw)
    np.testing.assert_allclose(out[0, 0].numpy(), [[0, 0], [0.5, 1.0]])
    assert out[1].abs().sum() == 0  # no positive evidence: empty map, no division by zero


def test_otsu_splits_bimodal_map():
    saliency = np.full((8, 8), 0.1, np.float32)
    saliency[2:4, 2:5] = 0.9
    saliency[6, :] = 0.2  # a weaker second mode stays below the threshold
    mask = RULES["otsu"]()(saliency, np.zeros((1, 8, 8)))
    assert mask.sum() == 6 and mask[2:4, 2:5].all()


def test_otsu_constant_map_is_empty():
    assert not RULES["otsu"]()(np.full((4, 4), 0.3), np.zeros((1, 4, 4))).any()


def test_intensity_otsu_pulls_blob_onto_bright_pixels():
    saliency = np.zeros((10, 10), np.float32)
    saliency[2:8, 2:8] = 1.0  # a coarse blob, 36 pixels
    image = np.full((1, 10, 10), 0.2, np.float32)
    image[0, 4:6, 4:6] = 1.0  # the bright lesion inside it, 4 pixels
    mask = RULES["intensity_otsu"]()(saliency, image)
    assert mask.sum() == 4 and mask[4:6, 4:6].all()


def test_top_percent_keeps_that_share():
    saliency = np.arange(100, dtype=np.float32).reshape(10, 10)
    mask = RULES["top_percent"](percent=5)(saliency, np.zeros((1, 10, 10)))
    assert mask.sum() == 5 and mask.flat[95:].all()


def test_clean_mask_drops_specks_and_fills_holes():
    mask = np.zeros((10, 10), bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False  # a hole
    mask[8, 8] = True  # a speck
    cleaned = REFINERS["fill_holes"]()(mask, None, None)
    cleaned = REFINERS["remove_small"](min_size=2)(cleaned, None, None)
    assert cleaned[3, 3] and not cleaned[8, 8] and cleaned.sum() == 25


def test_hysteresis_grows_confident_seeds_only():
    """The README's "Extending xaiseg" example, hand-computed."""
    saliency = np.zeros((6, 6), np.float32)
    saliency[1, 1:4] = [0.9, 0.5, 0.4]  # a confident seed with a faint rim
    saliency[4, 4] = 0.5  # a faint blob with no confident pixel
    mask = RULES["hysteresis"](low=0.3, high=0.7)(saliency, np.zeros((1, 6, 6)))
    assert mask[1, 1:4].all() and mask.sum() == 3


def test_readme_example_is_the_shipped_file():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    source = (ROOT / "src/xaiseg/masks/hysteresis.py").read_text()
    block = readme.split("`src/xaiseg/masks/hysteresis.py`:\n\n```python\n", 1)[1].split("```", 1)[
        0
    ]
    assert block == source
    # Nothing else lists it: the registry finds it by its file.
    assert "hysteresis" not in (ROOT / "src/xaiseg/masks/__init__.py").read_text()
    assert RULES["hysteresis"].__name__ == "Hysteresis"


def _square_and_blob(dark: bool):
    """A 20 x 20 image with a lesion square at rows and columns 6 to 12, and a map that
    peaks at its centre but spills two pixels beyond it on every side."""
    image = np.full((1, 20, 20), 0.2, np.float32)
    image[0, 6:13, 6:13] = 0.8
    if dark:
        image = 1.0 - image
    yy, xx = np.mgrid[:20, :20]
    saliency = np.exp(-((yy - 9) ** 2 + (xx - 9) ** 2) / (2 * 4.0**2)).astype(np.float32)
    return image, saliency


def test_random_walker_snaps_a_spilling_blob_to_the_lesion_bright_or_dark():
    truth = np.zeros((20, 20), bool)
    truth[6:13, 6:13] = True
    for dark in (False, True):
        image, saliency = _square_and_blob(dark)
        blob = saliency > 0.2  # the rule's coarse answer: a disc wider than the square
        assert blob.sum() > truth.sum() + 40
        walked = REFINERS["random_walker"](foreground=0.7, background=0.2)(blob, saliency, image)
        assert (walked == truth).all()


def test_random_walker_seeds_by_share_of_the_peak_and_keeps_a_seedless_mask():
    step = REFINERS["random_walker"](foreground=0.5, background=0.25)
    saliency = np.array([[0.0, 0.1, 0.2, 0.3, 0.4]], np.float32) * 2  # peak 0.8
    mask = np.array([[False, False, False, True, True]])
    # Shares of the peak: 0, 0.25, 0.5, 0.75, 1; lesion seeds need the mask and >= 0.5,
    # background seeds lie outside it below 0.25.
    assert step.seeds(mask, saliency).tolist() == [[2, 0, 0, 1, 1]]
    nothing_below = np.ones((4, 4), np.float32)
    full = np.ones((4, 4), bool)
    assert (step(full, nothing_below, np.zeros((1, 4, 4))) == full).all()


def test_superpixels_keep_the_regions_the_mask_mostly_covers():
    image, _ = _square_and_blob(dark=False)
    truth = np.zeros((20, 20), bool)
    truth[6:13, 6:13] = True
    step = REFINERS["superpixels"](size=50, compactness=0.01, share=0.5, image_sigma=0)
    # SLIC follows the square's outline: it is one superpixel, the surround six more.
    segments = step.segments(image)
    assert len(np.unique(segments[truth])) == 1 and len(np.unique(segments)) == 7
    most_of_it = truth.copy()
    most_of_it[6:9, 6:13] = False  # 28 of the square's 49 pixels, 57%
    most_of_it[0:2, 0:20] = True  # and 40 of the surround's 351, 11%
    assert (step(most_of_it, None, image) == truth).all()
    assert not step(truth & (np.arange(20) < 8)[:, None], None, image).any()  # 14 of 49


def test_keep_largest_weighs_components_by_size_map_mass_or_mean_map():
    """Three components: a wide faint band (12 px at 0.2), a small bright spot (2 px at
    1.0) and a middling one (4 px at 0.5): masses 2.4, 2.0 and 2.0; means 0.2, 1.0, 0.5."""
    mask = np.zeros((8, 8), bool)
    saliency = np.zeros((8, 8), np.float32)
    mask[0, :], saliency[0, :] = True, 0.2
    mask[1, :4], saliency[1, :4] = True, 0.2  # the band: rows 0 and 1, 12 pixels
    mask[5, 1:3], saliency[5, 1:3] = True, 1.0
    mask[4:6, 5:7], saliency[4:6, 5:7] = True, 0.5
    step = REFINERS["keep_largest"]
    assert step(n=1)(mask, saliency, None).sum() == 12
    assert step(n=1, by="mass")(mask, saliency, None).sum() == 12
    spot = step(n=1, by="mean")(mask, saliency, None)
    assert spot.sum() == 2 and spot[5, 1:3].all()
    two = step(n=2, by="mean")(mask, saliency, None)
    assert two.sum() == 6 and two[4:6, 5:7].all()
    with pytest.raises(XaisegError, match="by 'area' is not one of"):
        step(by="area")
