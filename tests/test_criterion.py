"""The label-only criterion: deletion drop, by hand, and where its choice is written."""

import numpy as np
import pandas as pd
import torch

from xaiseg.evaluate.criterion import blur, deletion_drop, with_criterion
from xaiseg.evaluate.report import criterion_lines


class LooksAtTheCorner(torch.nn.Module):
    """Logits (0, 10 x (mean of rows and columns 8 to 11 less 0.5)): the finding is a
    bright patch there, and nothing else moves the probability."""

    def forward(self, x):
        evidence = 10 * (x[:, 0, 8:12, 8:12].mean((1, 2)) - 0.5)
        return torch.stack([torch.zeros_like(evidence), evidence], 1)


def _image():
    image = np.zeros((1, 1, 64, 64), np.float32)
    image[0, 0, 8:12, 8:12] = 1.0
    return image


def test_blur_keeps_a_constant_image_and_spreads_a_patch():
    assert np.allclose(blur(np.full((1, 2, 16, 16), 0.3, np.float32)), 0.3)
    blurred = blur(_image())  # sigma 4 px at 64
    assert np.isclose(blurred.sum(), 16, rtol=1e-3)  # mass kept, spread out
    assert blurred[0, 0, 8:12, 8:12].max() < 0.2


def test_deletion_drop_is_large_on_the_evidence_and_zero_beside_it():
    model, image = LooksAtTheCorner(), _image()
    on, beside = np.zeros((2, 64, 64), bool)
    on[8:12, 8:12] = True
    beside[48:56, 48:56] = True  # 40 px away: the blur carries nothing there
    drop = deletion_drop(model, np.concatenate([image, image]), np.stack([on, beside]), 1)
    before = 1 / (1 + np.exp(-5.0))  # sigmoid(10 x (1 - 0.5))
    after = 1 / (1 + np.exp(-10 * (blur(image)[0, 0, 8:12, 8:12].mean() - 0.5)))
    assert np.isclose(drop[0], before - after, atol=1e-5) and drop[0] > 0.9
    assert abs(drop[1]) < 1e-6


def test_the_choice_is_written_beside_each_weak_row_and_into_the_report():
    rows = [
        ("a", "pseudo_mask", "no masks", "val", 0.2),
        ("a", "segmenter", "no masks", "val", 0.3),
        ("b", "pseudo_mask", "no masks", "val", 0.5),
        ("b", "segmenter", "no masks", "test", 0.4),
        ("ground_truth", "supervised", "all masks", "val", 0.7),
    ]
    summary = pd.DataFrame(rows, columns=["recipe", "model", "setting", "split", "dice"])
    criterion = pd.DataFrame(
        {"recipe": ["a", "b"], "deletion_drop": [0.05, 0.12], "label_choice": [False, True]}
    )
    out = with_criterion(summary, criterion)
    assert out["deletion_drop"].tolist()[:4] == [0.05, 0.05, 0.12, 0.12]
    assert np.isnan(out["deletion_drop"].iloc[4])
    assert out["label_choice"].tolist() == [False, False, True, True, False]
    text = "\n".join(criterion_lines(out))
    assert "Chosen: **b**" in text
    assert text.index("| b | 0.120 |") < text.index("| a | 0.050 |")  # best first
