import numpy as np
import torch

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
    assert '"hysteresis": Hysteresis,' in (ROOT / "src/xaiseg/masks/__init__.py").read_text()
