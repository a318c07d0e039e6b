"""Localisation metrics and patient-level intervals on arrays small enough to check
by hand; empty masks and empty maps on either side never give NaN."""

import numpy as np
import pytest

from xaiseg.evaluate import localisation as L
from xaiseg.evaluate.uncertainty import bootstrap_mean, paired_difference

# A 2x3 map and a mask of its right column.
MAP = np.array([[0.0, 1.0, 4.0], [-2.0, 2.0, 3.0]])
MASK = np.array([[False, False, True], [False, False, True]])


def test_hand_computed_values():
    assert L.pointing_game(MAP, MASK) == 1.0  # the maximum, 4, is inside
    # min-max scaled: [[2, 3, 6], [0, 4, 5]] / 6 -> inside (6 + 5) / (2+3+6+0+4+5 = 20)
    assert L.energy_pointing_game(MAP, MASK) == pytest.approx(11 / 20)
    # positive relevance 1 + 4 + 2 + 3 = 10, inside 7
    assert L.relevance_mass_accuracy(MAP, MASK) == pytest.approx(0.7)
    # K = 2: the two highest are 4 and 3, both inside
    assert L.relevance_rank_accuracy(MAP, MASK) == 1.0
    # inside {4, 3} against outside {0, 1, -2, 2}: every pair ranked right
    assert L.auroc(MAP, MASK) == 1.0
    # peak-normalised [[0, .25, 1], [0, .5, .75]]: at 0.6 -> {1, .75}: the mask exactly
    dices = dict(zip(L.THRESHOLDS, L.dice_at_thresholds(MAP, MASK), strict=True))
    assert dices[0.6] == 1.0 and dices[0.3] == pytest.approx(2 * 2 / (3 + 2))
    # Otsu splits {0, 0, .25} from {.5, .75, 1} (between-class variance .111 against
    # .105 for the split above .5): 2 x 2 / (3 + 2)
    assert L.otsu_dice(MAP, MASK) == pytest.approx(0.8)


def test_a_miss_and_ties():
    mask = np.array([[True, False, False], [False, False, False]])
    assert L.pointing_game(MAP, mask) == 0.0
    assert L.relevance_rank_accuracy(MAP, mask) == 0.0
    # the single inside pixel (0) beats only -2 of the 5 outside: 1 / 5
    assert L.auroc(MAP, mask) == pytest.approx(1 / 5)
    tied = np.ones((2, 3))
    assert L.auroc(tied, MASK) == 0.5


@pytest.mark.parametrize("name", [*L.PER_IMAGE, "dice_at_thresholds"])
def test_empty_mask_or_empty_map_is_never_nan(name):
    fn = getattr(L, name) if name == "dice_at_thresholds" else L.PER_IMAGE[name]
    empty_mask, flat_map, negative_map = np.zeros((2, 3), bool), np.zeros((2, 3)), -MAP - 5
    for saliency, truth in ((MAP, empty_mask), (flat_map, MASK), (negative_map, MASK)):
        value = np.asarray(fn(saliency, truth), float)
        assert np.isfinite(value).all(), (name, saliency, truth)
    assert L.localisation_scores(flat_map, empty_mask)["dice@0.50"] == 1.0  # both empty


def test_localisation_works_in_3d():
    volume, mask = np.zeros((3, 4, 4)), np.zeros((3, 4, 4), bool)
    volume[1, 2, 2], mask[1, 2, 2] = 5.0, True
    scores = L.localisation_scores(volume, mask)
    assert scores["pointing_game"] == scores["relevance_mass_accuracy"] == 1.0


def test_group_bootstrap_interval_resamples_patients():
    values = np.array([1.0, 1.0, 0.0, 0.0])
    low, high = bootstrap_mean(values, ["a", "a", "b", "b"], n_resamples=4000)
    # two patients: a resample is aa (mean 1), ab (0.5) or bb (0): 2.5% / 97.5% = 0 / 1
    assert (low, high) == (0.0, 1.0)
    assert bootstrap_mean(values, ["a"] * 4) == (0.5, 0.5)  # one patient: nothing varies
    assert np.isnan(bootstrap_mean([], [])[0])


def test_paired_difference_cancels_the_images_own_difficulty():
    hard_then_easy = np.array([0.1, 0.9, 0.2, 0.8])
    better = hard_then_easy + 0.05
    diff, low, high = paired_difference(better, hard_then_easy, ["a", "b", "c", "d"])
    assert (
        diff == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)
    )


def _per_image(rows):
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["truth_positive"], frame["pred_positive"], frame["split"] = True, True, "test"
    frame["iou"], frame["hd95"] = frame["dice"], 1.0
    return frame


def test_comparisons_name_a_winner_only_outside_zero():
    from xaiseg.evaluate.tables import comparisons, summary_table

    base = [0.2, 0.6, 0.4, 0.8]
    rows = []
    for recipe, model, shift, extra in (
        ("a", "segmenter", 0.1, {}),
        ("b", "segmenter", 0.0, {}),
        ("c", "segmenter", 0.0, {}),
        ("a", "finetune", 0.05, {"fraction": 0.1, "seed": 0}),
        ("ground_truth", "scratch", 0.0, {"fraction": 0.1, "seed": 0}),
    ):
        for i, value in enumerate(base):
            rows.append({"sample_id": f"s{i}", "group": f"p{i}", "recipe": recipe,
                         "model": model, "dice": value + shift, **extra})  # fmt: skip
    per_image = _per_image(rows)
    table = comparisons(per_image).set_index(["a", "b"])
    assert table.loc[("a:segmenter", "b:segmenter"), "verdict"] == "a:segmenter better"
    assert table.loc[("a:segmenter", "b:segmenter"), "ci_low"] == pytest.approx(0.1)
    assert table.loc[("b:segmenter", "c:segmenter"), "verdict"] == "no clear difference"
    doll = table.loc[("a:finetune@0.1/s0", "ground_truth:scratch@0.1/s0")]
    assert doll["difference"] == pytest.approx(0.05) and doll["n"] == 4
    assert len(table) == 3 + 1  # three plain pairs, one fine-tuned run against scratch
    summary = summary_table(per_image)
    row = summary[(summary["recipe"] == "b") & (summary["model"] == "segmenter")].iloc[0]
    assert row["dice_ci_low"] <= row["dice"] <= row["dice_ci_high"]
    assert 0.2 <= row["dice_ci_low"] < row["dice_ci_high"] <= 0.8
