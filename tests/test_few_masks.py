"""The few-masks rows: k val masks choose the recipe and, for segmenters, the cut of
their stored probabilities and a refinement; the choice is scored on test. Every
expectation below is counted by hand on 5 x 5 images."""

import json

import numpy as np
import pandas as pd
import pytest

from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.evaluate.few_masks import Variant, few_masks_rows, variants
from xaiseg.evaluate.tables import Evaluated, per_image_table, summary_table
from xaiseg.settings import EvaluateSettings, RefineStepSettings

LARGEST = RefineStepSettings("keep_largest", {"n": 1, "by": "size"})
# sample -> split, lesion pixels
IMAGES = {
    "v0": ("val", [(1, 1), (1, 2)]),
    "v1": ("val", [(3, 3)]),
    "t0": ("test", [(2, 2), (2, 3)]),
    "t1": ("test", []),
}
# segmenter -> sample -> {pixel: probability}
PROBABILITIES = {
    # Faint on its lesions (0.35) beside a fainter single-pixel spot: right only when cut
    # at 0.3 and the spot is dropped by keeping the largest component.
    "a": {
        "v0": {(1, 1): 0.35, (1, 2): 0.35, (4, 4): 0.4},
        "v1": {(3, 3): 0.9},
        "t0": {(2, 2): 0.35, (2, 3): 0.35, (0, 0): 0.45},
        "t1": {(4, 0): 0.4},
    },
    # Half of v0's lesion at every cut: Dice 2/3 on v0, 1 on v1.
    "b": {"v0": {(1, 1): 0.6}, "v1": {(3, 3): 0.9}, "t0": {(2, 2): 0.9}, "t1": {}},
}


def _grid(pixels) -> np.ndarray:
    grid = np.zeros((1, 5, 5), np.float32)
    for (row, col), value in pixels:
        grid[0, row, col] = value
    return grid


def _run(tmp_path, gate: float | None, images=IMAGES, probabilities=PROBABILITIES, low=("t1",)):
    data = tmp_path / "data"
    writer = ShardWriter(data, 2)
    for _sample, (_split, lesion) in images.items():
        mask = _grid([(p, 1) for p in lesion]).astype(np.uint8)
        writer.add({"image": mask.astype(np.float32), "mask": mask, "has_mask": np.array(True)})
    samples = [
        {"sample_id": s, "split": split, "group": s, "label_index": int(bool(lesion))}
        for s, (split, lesion) in images.items()
    ]
    writer.close({"samples": samples, "classes": ["normal", "lesion"]})
    found = [0.2 if s in low else 0.9 for s in images]  # the classifier's probability
    pd.DataFrame({"sample_id": list(images), "probability": found}).to_csv(
        tmp_path / "predictions.csv", index=False
    )
    things = []
    for recipe, by_sample in probabilities.items():
        folder = tmp_path / f"pseudo-{recipe}"
        writer = ShardWriter(folder / "predictions", 2)
        for sample in images:
            probability = _grid(by_sample.get(sample, {}).items())
            keep = gate is None or sample not in low
            mask = ((probability >= 0.5) & keep).astype(np.uint8)
            writer.add({"probability": probability.astype(np.float16), "mask": mask})
        writer.close({"samples": [{"sample_id": s} for s in images]})
        (folder / "metrics.json").write_text(json.dumps({"gate_threshold": gate}))
        things.append(Evaluated(recipe, "segmenter", folder / "predictions"))
    per_image = per_image_table(data, things)
    return data, things, per_image, summary_table(per_image)


SETTINGS = EvaluateSettings(few_masks=2, few_mask_cuts=(0.3, 0.5), few_mask_refine=(LARGEST,))


def test_variants_put_the_stored_reading_first():
    assert variants(SETTINGS) == [
        Variant(0.5),
        Variant(0.3),
        Variant(0.5, LARGEST),
        Variant(0.3, LARGEST),
    ]
    assert Variant(0.3, LARGEST).label == "cut 0.3, keep_largest (by size, n 1)"


@pytest.mark.parametrize("order", [1, -1], ids=["as-named", "reversed"])
def test_two_val_masks_choose_recipe_cut_and_refinement(tmp_path, order):
    # Reversed, the samples' positions run against their names' order (v1 before v0).
    images = dict(list(IMAGES.items())[::order])
    data, things, per_image, summary = _run(tmp_path, None, images)
    # Stored (cut 0.5): a scores 0 on v0 and 1 on v1, b 2/3 and 1: b is the better recipe.
    val = summary[(summary["split"] == "val")].set_index("recipe")["dice"]
    assert val.to_dict() == pytest.approx({"a": 0.5, "b": (2 / 3 + 1) / 2})
    few = few_masks_rows(per_image, summary, SETTINGS, data, things, tmp_path / "predictions.csv")
    # a at 0.3 with the largest component: v0 and v1 exact (1.0) beats b's 0.833 and a's
    # 0.3 alone (v0: 2*2 / (3 + 2) = 0.8, mean 0.9).
    row = few.iloc[0]
    assert (row["recipe"], row["setting"], row["split"]) == ("a", "few masks (k=2)", "test")
    assert row["choice"] == "cut 0.3, keep_largest (by size, n 1)"
    # On test: t0's lesion kept whole, the 0.45 spot dropped; t1 (no lesion) fires at 0.3.
    assert row["dice"] == pytest.approx(1.0)
    assert row["false_positive_rate"] == pytest.approx(1.0)
    assert len(few) == 1  # no pseudo-mask rows in this run


@pytest.mark.parametrize("order", [1, -1], ids=["as-named", "reversed"])
def test_the_segmenters_own_gate_still_holds_at_a_lower_cut(tmp_path, order):
    images = dict(list(IMAGES.items())[::order])
    data, things, per_image, summary = _run(tmp_path, 0.5, images, low=("t1", "v1"))
    few = few_masks_rows(per_image, summary, SETTINGS, data, things, tmp_path / "predictions.csv")
    # v1 is gated too (0.2): a scores 1.0 and 0 on v0 and v1 at 0.3 with the largest
    # component (0 and 0 as stored), b 2/3 and 0: a at 0.3 wins. Read with v0's gate on
    # v1's pixels (positions out of name order), a and b would tie at 0.5 as stored.
    assert few.iloc[0]["choice"] == "cut 0.3, keep_largest (by size, n 1)"
    # t1's classifier probability (0.2) is below the gate: empty at any cut.
    assert few.iloc[0]["false_positive_rate"] == pytest.approx(0.0)
    assert few.iloc[0]["dice"] == pytest.approx(1.0)


def test_several_counts_and_none(tmp_path):
    data, things, per_image, summary = _run(tmp_path, gate=None)
    two = EvaluateSettings(few_masks=[1, 2], few_mask_cuts=(0.5,))
    few = few_masks_rows(per_image, summary, two, data, things, tmp_path / "predictions.csv")
    assert few["setting"].tolist() == ["few masks (k=1)", "few masks (k=2)"]
    # At cut 0.5 only, both val images say b (2/3 or 1 against a's 0 or 1; ties: a).
    assert few["recipe"].tolist()[1] == "b"
    assert few_masks_rows(per_image, summary, EvaluateSettings(few_masks=0)).empty


def test_a_cut_that_marks_more_val_normals_than_stored_is_not_a_choice(tmp_path):
    # v2 has no lesion; a marks it at 0.4: every 0.3 reading of a fires on it, the stored
    # one does not. a is left with its stored 0.5 (mean 0.5) and b (0.833) wins as stored.
    images = {**IMAGES, "v2": ("val", [])}
    probabilities = {**PROBABILITIES, "a": {**PROBABILITIES["a"], "v2": {(0, 4): 0.4}}}
    data, things, per_image, summary = _run(tmp_path, None, images, probabilities)
    few = few_masks_rows(per_image, summary, SETTINGS, data, things, tmp_path / "predictions.csv")
    assert (few.iloc[0]["recipe"], few.iloc[0]["choice"]) == ("b", "cut 0.5")
    assert few.iloc[0]["dice"] == pytest.approx(2 * 1 / (1 + 2))  # t0: one of two pixels


def test_masks_without_probabilities_are_read_as_stored(tmp_path):
    """A segmenter folder of masks alone (no probabilities): every cut reads the mask."""
    data, things, per_image, summary = _run(tmp_path, None)
    for thing in things:
        store = ShardStore(thing.masks_dir)
        masks = store.load(["mask"])["mask"].numpy()
        writer = ShardWriter(tmp_path / f"masks-{thing.recipe}", 2)
        for mask in masks:
            writer.add({"mask": mask})
        writer.close({"samples": store.samples})
    bare = [Evaluated(t.recipe, t.model, tmp_path / f"masks-{t.recipe}") for t in things]
    few = few_masks_rows(per_image, summary, SETTINGS, data, bare, tmp_path / "predictions.csv")
    # Stored at 0.5: a 0 and 1 on val, b 2/3 and 1: b, as stored (test: one of two pixels).
    assert (few.iloc[0]["recipe"], few.iloc[0]["choice"]) == ("b", "cut 0.5")
    assert few.iloc[0]["dice"] == pytest.approx(2 / 3)


def test_the_label_choice_fixes_the_recipe_and_the_masks_its_reading(tmp_path):
    """Labels chose b: the masks choose among b's readings only, though a read at 0.3
    with its largest component scores better on them (1.0 against b's 0.833)."""
    data, things, per_image, summary = _run(tmp_path, None)
    predictions = tmp_path / "predictions.csv"
    few = few_masks_rows(per_image, summary, SETTINGS, data, things, predictions, "b")
    # b reads v0's lesion by half at either cut, with or without the largest component:
    # all tie, the stored reading first. Test: t0 one of two pixels, t1 left empty.
    row = few.iloc[0]
    assert (row["recipe"], row["choice"]) == ("b", "cut 0.5")
    assert row["dice"] == pytest.approx(2 / 3)
    assert row["false_positive_rate"] == pytest.approx(0.0)
    # A label choice without a U-Net (none trained on its masks): the masks choose.
    few = few_masks_rows(per_image, summary, SETTINGS, data, things, predictions, "c")
    assert few.iloc[0]["recipe"] == "a"
