"""Pseudo-mask recipes: combine, vote, refine, ignore band; typed options; joins."""

import numpy as np
import pytest
import torch

from xaiseg.data.artifacts import IGNORE
from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.errors import XaisegError
from xaiseg.masks import REFINERS, RULES
from xaiseg.masks.recipe import Recipe
from xaiseg.settings import ConfigError, IgnoreBand, RecipeSettings, RefineStepSettings
from xaiseg.train.losses import MaskedDiceCELoss

IMAGE = np.zeros((1, 4, 4), np.float32)


def _maps():
    a = np.zeros((4, 4), np.float32)
    b = np.zeros((4, 4), np.float32)
    a[0, :2] = 1.0  # map a: top-left pair
    b[0, 1:3] = 1.0  # map b: overlaps a at (0, 1)
    return np.stack([a, b])


def _recipe(**kw):
    return Recipe(RecipeSettings(name="r", maps=("a", "b"), refine=(), **kw))


def test_mean_then_otsu_keeps_the_union_above_the_split():
    # mean: 1.0 at (0,1), 0.5 at (0,0) and (0,2), 0 elsewhere -> Otsu splits 0 | 0.5, 1
    mask = _recipe(combine="mean")(_maps(), IMAGE)
    assert mask.dtype == np.uint8 and mask.sum() == 3 and mask[0, :3].all()


def test_product_keeps_only_agreement():
    mask = _recipe(combine="product")(_maps(), IMAGE)
    assert mask.sum() == 1 and mask[0, 1] == 1


def test_vote_needs_a_majority_of_maps():
    maps = np.concatenate([_maps(), _maps()[:1]])  # a, b, a: a's pixels win 2 of 3
    mask = _recipe(combine="vote")(maps, IMAGE)
    assert mask[0, 0] == 1 and mask[0, 1] == 1 and mask[0, 2] == 0


def test_ignore_band_marks_uncertain_pixels():
    mask = _recipe(combine="mean", ignore=IgnoreBand(low=0.4, high=0.6))(_maps(), IMAGE)
    assert mask[0, 1] == 1 and mask[0, 0] == 2 and mask[0, 2] == 2 and mask[3, 3] == 0


def test_ignore_band_leaves_the_rule_only_what_lies_above_it():
    # 92 pixels at 0, four at 0.5, four at 0.9: Otsu cuts below 0.5, calling 0.5 lesion
    saliency = np.zeros((10, 10), np.float32)
    saliency[0, :4] = 0.9
    saliency[1, :4] = 0.5
    maps, image = np.stack([saliency, saliency]), np.zeros((1, 10, 10), np.float32)
    plain = _recipe(combine="mean")(maps, image)
    assert plain[0, 0] == 1 and plain[1, 0] == 1 and plain[2, 0] == 0
    # Below the band is background, whatever the rule's cut: 0.5 is less sure than it
    banded = _recipe(combine="mean", ignore=IgnoreBand(low=0.6, high=0.8))(maps, image)
    assert banded[0, 0] == 1 and banded[1, 0] == 0 and banded[2, 0] == 0
    wide = _recipe(combine="mean", ignore=IgnoreBand(low=0.4, high=0.8))(maps, image)
    assert wide[0, 0] == 1 and wide[1, 0] == IGNORE and wide[2, 0] == 0


def test_refine_steps_run_in_order():
    saliency = np.zeros((1, 6, 6), np.float32)
    saliency[0, :3, :3] = 1.0
    saliency[0, 5, 5] = 1.0
    steps = (RefineStepSettings("keep_largest", {"n": 1}),)
    mask = Recipe(RecipeSettings(name="r", maps=("a",), refine=steps))(saliency, saliency)
    assert mask.sum() == 9 and mask[5, 5] == 0


def test_rules_work_in_3d():
    saliency = np.zeros((6, 6, 6), np.float32)
    saliency[0:4, 0:4, 0:4] = 0.5
    saliency[1:3, 1:3, 1:3] = 1.0
    for name in RULES:
        rule = RULES[name]()
        rule.fit(np.linspace(0, 0.6, 101))  # rules calibrated on healthy values need it
        mask = rule(saliency, saliency[np.newaxis])
        assert mask.shape == (6, 6, 6) and mask[1, 1, 1]


def test_misspelt_rule_option_is_named():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['percnt'\]"):
        RULES["top_percent"](percnt=3)
    with pytest.raises(XaisegError, match="unknown refine step"):
        Recipe(RecipeSettings(name="r", maps=("a",), refine=(RefineStepSettings("smooth"),)))


def test_dark_lesions_by_direction():
    saliency = np.ones((6, 6), np.float32)
    image = np.full((1, 6, 6), 0.9, np.float32)
    image[0, 2:4, 2:4] = 0.1  # a dark cyst
    mask = RULES["intensity_otsu"](direction="dark")(saliency, image)
    assert mask.sum() == 4 and mask[2:4, 2:4].all()


def test_auto_direction_follows_the_evidence_dark_or_bright():
    rule = RULES["intensity_otsu"](direction="auto")
    saliency = np.zeros((6, 6), np.float32)
    saliency[1:5, 1:5] = 0.5
    saliency[2:4, 2:4] = 1.0  # the evidence peaks on the lesion
    for lesion, tissue, expected in ((0.1, 0.6, "dark"), (0.9, 0.4, "bright")):
        image = np.full((1, 6, 6), tissue, np.float32)
        image[0, 2:4, 2:4] = lesion
        image[0, 0, :] = 0.0  # air above the body: neither lesion nor tissue
        region = saliency > 0.1
        # Inside: (4 x 1.0 x lesion + 12 x 0.5 x tissue) / 10; outside: tissue.
        assert rule.direction(saliency, image[0], region) == expected
        mask = rule(saliency, image)
        assert mask.sum() == 4 and mask[2:4, 2:4].all()
    with pytest.raises(XaisegError, match="direction 'up'"):
        RULES["intensity_otsu"](direction="up")


def test_masked_loss_ignores_ignore_pixels():
    logits = torch.randn(2, 2, 5, 5)
    target = torch.randint(0, 2, (2, 1, 5, 5)).float()
    loss = MaskedDiceCELoss()
    wild = target.clone()
    wild[:, :, :2] = 2  # ignored rows: whatever the logits there, the loss is the same
    changed = logits.clone()
    changed[:, :, :2] = torch.randn(2, 2, 2, 5) * 10
    assert torch.allclose(loss(logits, wild), loss(changed, wild))
    assert not torch.allclose(loss(logits, target), loss(changed, target))


def test_masked_loss_matches_monai_without_ignore():
    from monai.losses import DiceCELoss

    logits = torch.randn(3, 2, 6, 6)
    target = torch.randint(0, 2, (3, 1, 6, 6)).float()
    for batch in (True, False):
        expected = DiceCELoss(to_onehot_y=True, softmax=True, batch=batch)(logits, target)
        torch.testing.assert_close(MaskedDiceCELoss(batch=batch)(logits, target), expected)


def _store(folder, ids):
    writer = ShardWriter(folder, 2)
    for _ in ids:
        writer.add({"x": np.zeros(1, np.float32)})
    writer.close({"samples": [{"sample_id": s} for s in ids]})
    return ShardStore(folder)


def test_join_refuses_artifacts_of_other_samples(tmp_path):
    a = _store(tmp_path / "a", ["s1", "s2", "s3"])
    b = _store(tmp_path / "b", ["s1", "s3", "s2"])
    with pytest.raises(XaisegError, match=r"first difference at position 1 \('s3' where 's2'"):
        list(a.iter_joined(b))
    same = _store(tmp_path / "c", ["s1", "s2", "s3"])
    assert [ids for ids, _ in a.iter_joined(same)] == [["s1", "s2"], ["s3"]]


def test_healthy_quantile_is_calibrated_on_healthy_values():
    rule = RULES["healthy_quantile"](quantile=0.9)
    rule.fit(np.arange(11, dtype=float))  # 0..10: the 0.9 quantile is 9.0
    assert rule.threshold == 9.0
    saliency = np.array([[8.0, 9.0], [9.5, 12.0]])
    assert rule(saliency, np.zeros((1, 2, 2))).tolist() == [[False, False], [True, True]]


def test_unnormalised_recipe_keeps_map_values():
    from xaiseg.masks.normalize import normalize_maps

    raw = torch.tensor([[[[0.5, -1.0], [0.25, 0.0]]]])
    assert normalize_maps(raw, peak=False).tolist() == [[[[0.5, 0.0], [0.25, 0.0]]]]
    assert normalize_maps(raw).tolist() == [[[[1.0, 0.0], [0.5, 0.0]]]]


def test_healthy_quantile_needs_fitting():
    with pytest.raises(XaisegError, match="fit"):
        RULES["healthy_quantile"]()(np.zeros((2, 2)), np.zeros((1, 2, 2)))


def _mask_stage_inputs(folder):
    """Five 4x4 images: train healthy x2 (map values 0..0.15), train lesion (bright corner),
    train lesion the map misses, and a test image the classifier calls positive."""
    samples = [
        ("h1", "train", 0, 0.9),  # a healthy image the classifier wrongly calls positive
        ("h2", "train", 0, 0.1),
        ("l1", "train", 1, 0.2),  # a lesion the classifier misses: its label decides
        ("l2", "train", 1, 0.9),
        ("t1", "test", 0, 0.9),  # no label at test time: the classifier decides
    ]
    data, maps = ShardWriter(folder / "data", 2), ShardWriter(folder / "map", 2)
    for sample_id, _split, _label, _prob in samples:
        raw = np.linspace(0, 0.15, 16, dtype=np.float32).reshape(1, 4, 4)
        if sample_id in ("l1", "t1"):
            raw[0, :2, :2] = 1.0
        if sample_id == "l2":
            raw[:] = 0.0  # the map shows nothing of this lesion
        data.add({"image": np.zeros((1, 4, 4), np.float32)})
        maps.add({"map": raw.astype(np.float16), "scale": np.float32(1.0)})
    index = [
        {"sample_id": s, "split": split, "label_index": label} for s, split, label, _ in samples
    ]
    data.close({"samples": index, "classes": ["normal", "lesion"]})
    maps.close({"samples": [{"sample_id": s[0]} for s in samples]})
    classifier = folder / "classifier"
    classifier.mkdir()
    rows = "\n".join(f"{s},{p}" for s, _, _, p in samples)
    (classifier / "predictions.csv").write_text(f"sample_id,probability\n{rows}\n")
    return folder / "data", {"m": folder / "map"}, classifier


def test_mask_stage_gates_by_label_then_classifier_and_ignores_what_it_misses(tmp_path):
    from xaiseg.masks.build import build_masks
    from xaiseg.settings import RecipeJob

    data, maps, classifier = _mask_stage_inputs(tmp_path)
    recipe = RecipeSettings(
        name="r", maps=("m",), normalize="none", rule="healthy_quantile", refine=()
    )
    counts = build_masks(data, maps, classifier, tmp_path / "out", RecipeJob(recipe, 0.5))
    masks = ShardStore(tmp_path / "out").load(["mask"])["mask"][:, 0]
    # Calibrated on h1, h2 only (train, healthy): the 0.95 quantile lies below 0.15.
    assert 0.13 < counts["reference_threshold"] < 0.15
    assert not masks[0].any() and not masks[1].any()  # healthy by label, whatever p says
    assert masks[2][:2, :2].eq(1).all() and masks[2].eq(1).sum() == 5  # corner + top value
    assert masks[3].eq(IGNORE).all()  # a lesion the map cannot show: nothing is taught
    assert masks[4].eq(1).any()  # test: the classifier's 0.9 opens the gate
    assert counts["unfound"] == 1 and counts["gated_empty"] == 2


def test_inside_foreground_drops_the_rim_and_the_background():
    image = np.zeros((1, 9, 9), np.float32)
    image[0, 1:8, 1:8] = 0.8  # the body: a 7x7 square
    image[0, 4, 4] = 0.0  # a dark hole inside it still counts as body
    mask = np.ones((9, 9), bool)
    kept = REFINERS["inside_foreground"](margin=1)(mask, image[0], image)
    assert kept.sum() == 25 and kept[2:7, 2:7].all()  # the 5x5 core, hole included
    assert REFINERS["inside_foreground"](margin=0)(mask, image[0], image).sum() == 49


def test_a_self_training_rounds_masks_are_the_last_segmenters_gated_like_a_recipes(tmp_path):
    """The previous segmenter marked the top-left corner of every image: kept where the
    label (train) or the classifier (test) says lesion, empty on healthy images whatever
    the network drew, all IGNORE on a lesion it drew nothing on."""
    from xaiseg.masks.build import build_round_masks
    from xaiseg.settings import RecipeJob

    data, _maps, classifier = _mask_stage_inputs(tmp_path)
    ids = ShardStore(data).sample_ids
    predictions = ShardWriter(tmp_path / "predictions", 2)
    for sample_id in ids:
        mask = np.zeros((1, 4, 4), np.uint8)
        if sample_id != "l2":  # the network found nothing on l2
            mask[0, :2, :2] = 1
        predictions.add({"probability": mask.astype(np.float16), "mask": mask})
    predictions.close({"samples": [{"sample_id": s} for s in ids]})
    job = RecipeJob(RecipeSettings(name="r-r1"), 0.5)
    counts = build_round_masks(data, tmp_path / "predictions", classifier, tmp_path / "out", job)
    masks = ShardStore(tmp_path / "out").load(["mask"])["mask"][:, 0]
    corner = torch.zeros(4, 4, dtype=masks.dtype)
    corner[:2, :2] = 1
    assert not masks[0].any() and not masks[1].any()  # h1, h2: healthy by label
    assert masks[2].equal(corner)  # l1: a lesion by label, the network's corner
    assert masks[3].eq(IGNORE).all()  # l2: a lesion the network missed
    assert masks[4].equal(corner)  # t1: the classifier's 0.9 opens the gate
    assert counts["unfound"] == 1 and counts["gated_empty"] == 2
    other = ShardWriter(tmp_path / "other", 2)
    other.add({"mask": np.zeros((1, 4, 4), np.uint8)})
    other.close({"samples": [{"sample_id": "x"}]})
    with pytest.raises(XaisegError, match="other: its images are not those of"):
        build_round_masks(data, tmp_path / "other", classifier, tmp_path / "out2", job)


def test_a_group_of_maps_is_one_term_their_mean(tmp_path):
    """maps [a, [b, c]] with product: sqrt(a x mean(b, c)). a marks the top row; b and c
    never overlap (b: (0, 0); c: (0, 1) and (1, 1)), so the plain product of all three is
    0 everywhere, and the group's mean keeps what either marks where a agrees."""
    from xaiseg.masks.build import _recipe_inputs, build_masks
    from xaiseg.settings import RecipeJob

    raw = {"a": [[1.0, 1.0], [0.0, 0.0]], "b": [[1.0, 0.0], [0.0, 0.0]], "c": [[0, 1.0], [0, 1.0]]}
    data = ShardWriter(tmp_path / "data", 1)
    data.add({"image": np.zeros((1, 2, 2), np.float32)})
    data.close({"samples": [{"sample_id": "l", "split": "train", "label_index": 1}],
                "classes": ["normal", "lesion"]})  # fmt: skip
    for name, values in raw.items():
        writer = ShardWriter(tmp_path / name, 1)
        writer.add({"map": np.array([values], np.float16), "scale": np.float32(1.0)})
        writer.close({"samples": [{"sample_id": "l"}]})
    (tmp_path / "classifier").mkdir()
    (tmp_path / "classifier" / "predictions.csv").write_text("sample_id,probability\nl,0.9\n")
    recipe = RecipeSettings(name="g", maps=["a", ["b", "c"]], combine="product", refine=())
    assert recipe.maps == ("a", ("b", "c")) and recipe.map_names == ("a", "b", "c")
    stores = [ShardStore(tmp_path / n) for n in recipe.map_names]
    job = RecipeJob(recipe, 0.5)
    _, terms = next(_recipe_inputs(ShardStore(tmp_path / "data"), stores, job))
    np.testing.assert_allclose(terms[0, 1], [[0.5, 0.5], [0.0, 0.5]])  # mean of b and c
    combined = Recipe(recipe).combine(terms[0])
    np.testing.assert_allclose(combined, [[0.5**0.5, 0.5**0.5], [0.0, 0.0]])
    maps = {n: tmp_path / n for n in raw}
    build_masks(tmp_path / "data", maps, tmp_path / "classifier", tmp_path / "m", job)
    assert ShardStore(tmp_path / "m").load(["mask"])["mask"][0, 0].tolist() == [[1, 1], [0, 0]]
    flat = RecipeSettings(name="f", maps=("a", "b", "c"), combine="product", refine=())
    counts = build_masks(tmp_path / "data", maps, tmp_path / "classifier", tmp_path / "f",
                         RecipeJob(flat, 0.5))  # fmt: skip
    assert counts["unfound"] == 1  # three maps that never agree: nothing found
