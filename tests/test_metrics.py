import math

import numpy as np
import pytest
import torch

from xaiseg.metrics import classification_metrics, segmentation_scores


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
