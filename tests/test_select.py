"""A recipe's ``select``: per-image mask scores, the cut that keeps a share of the train
split's images with the finding, and the mask stage leaving the others out."""

import numpy as np
import pytest

from xaiseg.data.artifacts import IGNORE
from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.errors import XaisegError
from xaiseg.masks.build import build_masks
from xaiseg.masks.recipe import Recipe
from xaiseg.masks.select import mask_contrast, mask_mass, mask_score, selection_cut
from xaiseg.settings import RecipeJob, RecipeSettings, SelectSettings

MAP = np.array([[4.0, 4.0], [1.0, 1.0]])
TOP = np.array([[True, True], [False, False]])


def test_contrast_is_the_mean_inside_over_the_mean_outside():
    assert mask_contrast(TOP, MAP) == pytest.approx(4.0)
    assert mask_contrast(~TOP, MAP) == pytest.approx(0.25)
    assert mask_contrast(np.ones((2, 2), bool), MAP) == 1.0  # nothing outside
    assert mask_contrast(TOP, np.array([[1.0, 1.0], [0.0, 0.0]])) == np.inf
    assert mask_contrast(np.zeros((2, 2), bool), MAP) == -np.inf


def test_mass_is_the_share_of_the_map_inside():
    assert mask_mass(TOP, MAP) == pytest.approx(0.8)
    assert mask_mass(np.zeros((2, 2), bool), MAP) == -np.inf
    assert mask_mass(TOP, np.zeros((2, 2))) == -np.inf  # no evidence anywhere


def test_an_unknown_score_is_named():
    with pytest.raises(XaisegError, match="'sharpness'"):
        mask_score("sharpness", TOP, MAP)
    with pytest.raises(XaisegError, match="'sharpness'"):
        Recipe(RecipeSettings(name="r", maps=("m",), select=SelectSettings("sharpness", 0.5)))


def test_the_cut_keeps_the_share_asked_for_rounding_up():
    scores = np.array([5.0, 1.0, 3.0, 4.0, -np.inf])  # -inf: an empty mask, never counted
    assert selection_cut(scores, 1.0) == 1.0
    assert selection_cut(scores, 0.5) == 4.0  # 2 of the 4 found
    assert selection_cut(scores, 0.3) == 4.0  # 1.2 rounds up to 2
    assert selection_cut(scores, 0.25) == 5.0
    assert selection_cut(np.array([-np.inf]), 0.5) == -np.inf
    with pytest.raises(XaisegError, match="keep 0"):
        selection_cut(scores, 0)


def _inputs(folder):
    """Six 4x4 images, a bright 2x2 corner on a flat floor of map: the floor sets how
    clearly the corner stands out (contrast 1 / floor). Train lesions at floors 0.1,
    0.2, 0.4, 0.5; a val lesion at 0.3; a test image the classifier passes at 0.5."""
    samples = [
        ("l1", "train", 1, 0.1),
        ("l2", "train", 1, 0.2),
        ("l3", "train", 1, 0.4),
        ("l4", "train", 1, 0.5),
        ("v1", "val", 1, 0.3),
        ("t1", "test", 0, 0.5),
    ]
    data, maps = ShardWriter(folder / "data", 2), ShardWriter(folder / "map", 2)
    for _sample_id, _split, _label, floor in samples:
        raw = np.full((1, 4, 4), floor, np.float32)
        raw[0, :2, :2] = 1.0
        data.add({"image": np.zeros((1, 4, 4), np.float32)})
        maps.add({"map": raw.astype(np.float16), "scale": np.float32(1.0)})
    index = [{"sample_id": s, "split": sp, "label_index": lab} for s, sp, lab, _ in samples]
    data.close({"samples": index, "classes": ["normal", "lesion"]})
    maps.close({"samples": [{"sample_id": s[0]} for s in samples]})
    classifier = folder / "classifier"
    classifier.mkdir()
    rows = "\n".join(f"{s},0.9" for s, *_ in samples)
    (classifier / "predictions.csv").write_text(f"sample_id,probability\n{rows}\n")
    return folder / "data", {"m": folder / "map"}, classifier


def _job(keep):
    recipe = RecipeSettings(
        name="r", maps=("m",), refine=(), select=SelectSettings("contrast", keep)
    )
    return RecipeJob(recipe, 0.5)


def test_the_mask_stage_leaves_out_the_faintest_labelled_masks(tmp_path):
    data, maps, classifier = _inputs(tmp_path)
    counts = build_masks(data, maps, classifier, tmp_path / "out", _job(0.5))
    masks = ShardStore(tmp_path / "out").load(["mask"])["mask"][:, 0]
    # Contrasts 1/floor: train 10, 5, 2.5, 2; keeping half cuts at 5.
    assert counts["selection_cut"] == pytest.approx(5.0, rel=1e-3)
    for kept in (0, 1):
        assert masks[kept][:2, :2].eq(1).all() and masks[kept].eq(1).sum() == 4
    assert masks[2].eq(IGNORE).all() and masks[3].eq(IGNORE).all()
    assert masks[4].eq(IGNORE).all()  # val, 3.3 below the train cut
    assert masks[5].eq(1).sum() == 4  # test: the gate decides, never the selection
    assert counts["left_out"] == 3 and counts["unfound"] == 0


def test_a_shard_group_takes_the_cut_of_the_whole_train_split(tmp_path):
    data, maps, classifier = _inputs(tmp_path)
    whole = build_masks(data, maps, classifier, tmp_path / "whole", _job(0.5))
    second = build_masks(data, maps, classifier, tmp_path / "g1", _job(0.5), group=(1, 1))
    assert second["selection_cut"] == whole["selection_cut"]
    # Shard 1 holds l3 and l4, both below the cut learnt from all four train lesions.
    assert second["left_out"] == 2
    kept_all = build_masks(data, maps, classifier, tmp_path / "all", _job(1.0))
    assert kept_all["left_out"] == 0
