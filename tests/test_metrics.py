import math

import numpy as np
import pandas as pd
import pytest
import torch

from xaiseg.data.artifacts import IGNORE
from xaiseg.errors import XaisegError
from xaiseg.evaluate.tables import volume_dice
from xaiseg.metrics import classification_metrics, pooled_dice, segmentation_scores
from xaiseg.train.segmenter import masked_dice, score_floor


def _mask(*cells, size=8):
    m = torch.zeros(1, 1, size, size, dtype=torch.uint8)
    for r, c in cells:
        m[0, 0, r, c] = 1
    return m


def test_dice_iou_hand_computed():
    pred = _mask((0, 0), (0, 1), (0, 2))  # 3 pixels
    truth = _mask((0, 1), (0, 2), (0, 3), (0, 4))  # 4 pixels, overlap 2
    scores = segmentation_scores(pred, truth)
    assert math.isclose(scores["dice"][0], 2 * 2 / (3 + 4), rel_tol=1e-6)
    assert math.isclose(scores["iou"][0], 2 / 5, rel_tol=1e-6)
    # Surface distances: pred points to truth {1, 0, 0}, truth to pred {0, 0, 1, 2};
    # the 95th percentile of the symmetric set is 2 (MONAI takes max of both directions).
    assert scores["hd95"][0] > 0


def test_empty_conventions():
    empty, spot = _mask(), _mask((3, 3))
    scores = segmentation_scores(torch.cat([empty, spot, empty]), torch.cat([empty, empty, spot]))
    np.testing.assert_allclose(scores["dice"], [1.0, 0.0, 0.0])
    assert np.isnan(scores["hd95"]).all()


def test_pooled_dice_counts_stray_pixels_not_images():
    lesion = _mask((0, 0), (0, 1), (0, 2), (0, 3))
    hit = _mask((0, 0), (0, 1), (0, 2))  # 3 of 4 lesion pixels
    stray, empty = _mask((5, 5)), _mask()
    pred, truth = torch.cat([hit, stray, empty]), torch.cat([lesion, empty, empty])
    # Per image: 6/7, 0 (one stray pixel), 1 -> mean 0.619; pooled: 2*3 / (4 + 4) = 0.75.
    assert math.isclose(masked_dice(pred.bool(), truth), (6 / 7 + 0 + 1) / 3, rel_tol=1e-6)
    assert math.isclose(pooled_dice(pred, truth), 0.75)
    assert math.isclose(masked_dice(pred.bool(), truth, "pooled"), 0.75)
    assert pooled_dice(empty, empty) == 1.0


def test_pooled_val_dice_leaves_ignored_pixels_out():
    truth = _mask((0, 0), (0, 1))
    truth[0, 0, 7, 7] = IGNORE  # a recipe's unsure pixel, predicted: not a false positive
    pred = _mask((0, 0), (7, 7)).bool()
    assert math.isclose(masked_dice(pred, truth, "pooled"), 2 * 1 / (1 + 2))
    all_ignored = torch.full_like(truth, IGNORE)  # nothing to score in that image
    both = masked_dice(torch.cat([pred, pred]), torch.cat([truth, all_ignored]), "pooled")
    assert math.isclose(both, 2 / 3)


def test_score_floor_is_a_tenth_above_what_empty_predictions_score():
    lesion, empty = _mask((0, 0)), _mask()
    targets = torch.cat([lesion, empty, empty, empty])  # 3 of 4 val targets empty
    assert math.isclose(score_floor(targets, "per_image"), 0.75 + 0.1 * 0.25)
    assert math.isclose(score_floor(targets, "pooled"), 0.1)
    with pytest.raises(XaisegError, match="val_dice 'global'"):
        score_floor(targets, "global")


def test_hd95_identical_masks_is_zero():
    m = _mask((1, 1), (1, 2), (2, 1), (2, 2))
    assert segmentation_scores(m, m)["hd95"][0] == 0


def test_classification_metrics_hand_computed():
    prob = torch.tensor([0.9, 0.8, 0.3, 0.6, 0.1, 0.2])
    label = torch.tensor([1, 1, 1, 0, 0, 0])
    m = classification_metrics(prob, label)
    # TP=2 (0.9, 0.8), FN=1 (0.3), FP=1 (0.6), TN=2
    assert math.isclose(m["sensitivity"], 2 / 3, rel_tol=1e-6)
    assert math.isclose(m["specificity"], 2 / 3, rel_tol=1e-6)
    assert math.isclose(m["accuracy"], 4 / 6, rel_tol=1e-6)
    # AUC: of 9 positive/negative pairs, 8 are ranked correctly (0.3 < 0.6 is the miss).
    assert math.isclose(m["auc"], 8 / 9, rel_tol=1e-6)


def test_youden_threshold_hand_computed():
    from xaiseg.metrics import youden_threshold

    prob = torch.tensor([0.9, 0.35, 0.3, 0.2, 0.1, 0.32])
    label = torch.tensor([1, 1, 1, 0, 0, 0])
    # cut 0.3: sens 1, spec 2/3 -> J = 2/3; cut 0.35: sens 2/3, spec 1 -> J = 2/3 (tie: lowest);
    # cut 0.32 gives sens 2/3 spec 2/3: worse.
    assert youden_threshold(prob, label) == pytest.approx(0.3)


def test_false_positive_gate_hand_computed():
    from xaiseg.metrics import false_positive_gate

    # Five val images without the finding; four keep foreground, at 0.9, 0.7, 0.7, 0.1.
    prob = np.array([0.9, 0.7, 0.7, 0.2, 0.1])
    fires = np.array([True, True, True, False, True])
    # 0.2 of 5: one may keep foreground -> cut just above 0.7 (both ties cut), 0.9 stays.
    cut = false_positive_gate(prob, fires, 0.2)
    assert 0.7 < cut < 0.7 + 1e-12
    assert 0.1 < false_positive_gate(prob, fires, 0.6) < 0.1 + 1e-12  # three may: 0.1 cut
    assert 0.9 < false_positive_gate(prob, fires, 0.0) < 0.9 + 1e-12  # none may
    assert false_positive_gate(prob, fires, 0.8) == 0.0  # four may: no gate needed
    assert false_positive_gate(prob, ~fires | True, 1.0) == 0.0


def test_wilson_upper_bound_hand_computed():
    from statistics import NormalDist

    from xaiseg.metrics import wilson_upper

    one_sigma = NormalDist().cdf(1.0)  # z = 1: upper = (k + 1/2 + sqrt(k(n-k)/n + 1/4)) / (n + 1)
    assert wilson_upper(0, 12, one_sigma) == pytest.approx(1 / 13)
    assert wilson_upper(1, 12, one_sigma) == pytest.approx((1.5 + (11 / 12 + 0.25) ** 0.5) / 13)
    assert wilson_upper(2, 12, one_sigma) == pytest.approx((2.5 + (20 / 12 + 0.25) ** 0.5) / 13)
    assert wilson_upper(3, 12, 0.5) == pytest.approx(0.25)  # z = 0: the rate as counted
    assert wilson_upper(0, 0, one_sigma) == 1.0  # nothing seen: nothing known


def test_false_positive_gate_reads_a_small_val_set_as_its_upper_bound():
    from statistics import NormalDist

    from xaiseg.metrics import false_positive_gate

    # Twelve val images without the finding, three keep foreground (at 0.94, 0.36, 0.30).
    prob = np.array([0.94, 0.36, 0.30] + [0.2] * 9)
    fires = np.array([True] * 3 + [False] * 9)
    # As counted two of twelve (0.167) may keep it: cut just above 0.30.
    assert 0.30 < false_positive_gate(prob, fires, 0.2) < 0.30 + 1e-12
    # At z = 1 the bound of 2/12 is 0.299 and of 1/12 0.198: one may, cut above 0.36.
    cut = false_positive_gate(prob, fires, 0.2, NormalDist().cdf(1.0))
    assert 0.36 < cut < 0.36 + 1e-12
    # At z = 1.28 even 1/12 (0.242) is too many: only 0.94 is left above the cut.
    assert 0.94 < false_positive_gate(prob, fires, 0.2, 0.9) < 0.94 + 1e-12


def test_grouped_bootstrap_auc_of_perfect_ranking_is_one():
    from xaiseg.metrics import grouped_bootstrap_auc

    prob = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])
    label = np.array([0, 1, 0, 1, 0, 1])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    assert grouped_bootstrap_auc(prob, label, groups, n_resamples=50) == (1.0, 1.0)


def test_grouped_bootstrap_auc_resamples_groups_not_rows():
    from xaiseg.metrics import grouped_bootstrap_auc

    # Group "a" holds every positive: a resample without it has one class and is skipped,
    # one with it has AUC 1 -- so the interval is (1, 1), whatever the draw.
    prob = np.array([0.9, 0.8, 0.1, 0.2])
    label = np.array([1, 1, 0, 0])
    groups = np.array(["a", "a", "b", "b"])
    assert grouped_bootstrap_auc(prob, label, groups, n_resamples=50) == (1.0, 1.0)
    # Slices of one patient that disagree: the interval is wide and includes 0.5.
    rng = np.random.default_rng(0)
    prob = rng.random(40)
    label = np.tile([0, 1], 20)
    low, high = grouped_bootstrap_auc(prob, label, np.repeat(np.arange(10), 4), seed=1)
    assert low < 0.5 < high


def test_few_masks_rows_choose_the_recipe_on_k_val_images():
    import pandas as pd

    from xaiseg.evaluate.few_masks import few_masks_rows
    from xaiseg.evaluate.tables import summary_table
    from xaiseg.settings import EvaluateSettings

    rows = []
    for recipe, val_dice, test_dice in (("a", 0.9, 0.1), ("b", 0.2, 0.8)):
        for i in range(3):
            rows.append(("val", f"v{i}", recipe, val_dice))
            rows.append(("test", f"t{i}", recipe, test_dice))
    per_image = pd.DataFrame(rows, columns=["split", "sample_id", "recipe", "dice"]).assign(
        model="segmenter", truth_positive=True, pred_positive=True, iou=0.0, hd95=0.0
    )
    summary = summary_table(per_image)
    few = few_masks_rows(per_image, summary, EvaluateSettings(few_masks=2))
    # "a" wins on val (0.9 against 0.2) even though it loses on test: test is never looked at.
    assert few[["recipe", "setting", "split"]].values.tolist() == [["a", "few masks (k=2)", "test"]]
    assert few["dice"].tolist() == pytest.approx([0.1])
    assert few_masks_rows(per_image, summary, EvaluateSettings(few_masks=0)).empty


def test_volume_dice_takes_each_patients_slices_together():
    """Patient A: slices with (inter, pred, truth) = (2, 3, 4) and (0, 1, 0), a false
    positive on a healthy slice: 2*2 / (4 + 4) = 0.5. Patient B: (3, 3, 3): 1.0. Patient
    C has no lesion and no say. Mean 0.75; the per-slice mean would differ."""
    images = pd.DataFrame(
        {
            "group": ["A", "A", "B", "C"],
            "intersection": [2, 0, 3, 0],
            "predicted_pixels": [3, 1, 3, 5],
            "truth_pixels": [4, 0, 3, 0],
        }
    )
    assert volume_dice(images) == pytest.approx(0.75)
    assert math.isnan(volume_dice(images[images["group"] == "C"]))
    assert math.isnan(volume_dice(images.drop(columns="intersection")))
