"""Deletion, insertion and the randomisation sanity check, by hand and on real networks."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xaiseg.evaluate.faithfulness import (
    cascade_steps,
    deletion_insertion,
    parameter_blocks,
    passes_sanity,
    randomisation_test,
)
from xaiseg.models import build_classifier
from xaiseg.models.ensemble import Ensemble
from xaiseg.saliency import METHODS


class SumOfPixels(nn.Module):
    """logits [0, sum of pixels]: the finding's probability is sigmoid(sum)."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(s), s], dim=1)


def test_deletion_and_insertion_by_hand():
    image = torch.tensor([[[[4.0, 0.0], [0.0, 0.0]]]])
    saliency = torch.tensor([[[[9.0, 1.0], [0.0, -1.0]]]])  # the bright pixel first
    deletion, insertion = deletion_insertion(SumOfPixels(), image, saliency, 1, steps=2)
    s4 = 1 / (1 + math.exp(-4))
    # shares 0, .5, 1 (0, 2, 4 pixels): deletion sigmoid(4), .5, .5; insertion .5, s4, s4
    assert deletion[0] == pytest.approx(0.5 * (s4 + 0.5) / 2 + 0.5 * (0.5 + 0.5) / 2)
    assert insertion[0] == pytest.approx(0.5 * (0.5 + s4) / 2 + 0.5 * (s4 + s4) / 2)
    # the reverse order deletes the bright pixel last: a worse (higher) deletion area
    worse, _ = deletion_insertion(SumOfPixels(), image, -saliency, 1, steps=2)
    assert worse[0] > deletion[0]


def test_blocks_are_randomised_from_the_output_backwards():
    assert parameter_blocks(build_classifier("resnet10", 1, 2)) == [
        "fc", "layer4", "layer3", "layer2", "layer1", "bn1", "conv1",
    ]  # fmt: skip
    vgg = build_classifier("vgg", 1, 2, channels=(4, 8), convs_per_stage=1)
    assert parameter_blocks(vgg) == ["fc", "stage2", "stage1"]


def _vgg(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_classifier("vgg", 1, 2, channels=(4, 8), convs_per_stage=1).eval()


def test_an_ensembles_members_are_randomised_block_by_block_together():
    pair = Ensemble([_vgg(0), _vgg(1)])
    assert cascade_steps(pair) == [
        ("fc", ["members.0.fc", "members.1.fc"]),
        ("stage2", ["members.0.stage2", "members.1.stage2"]),
        ("stage1", ["members.0.stage1", "members.1.stage1"]),
    ]
    single = [("fc", ["fc"]), ("stage2", ["stage2"]), ("stage1", ["stage1"])]
    assert cascade_steps(pair.members[0]) == single

    # After the first step the heads of both members are new, the rest untouched: a map
    # reading member 0's fc and member 1's stage1 weights sees one change, then a second.
    seen = []

    def weights(model, x):
        fc0, conv1 = model.members[0].fc.weight, model.members[1].stage1[0].weight
        seen.append((x * (fc0.sum() + 100 * conv1.sum())).detach())
        return seen[-1]

    randomisation_test(pair, weights, torch.rand(2, 1, 8, 8))
    original, after_fc, after_stage2, after_stage1 = seen
    assert not torch.equal(after_fc, original)
    assert torch.equal(after_stage2, after_fc)  # neither weight lives in stage2
    assert not torch.equal(after_stage1, after_stage2)


def _sobel(images):
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(images, kx, padding=1), F.conv2d(images, kx.transpose(2, 3), padding=1)
    return (gx**2 + gy**2).sqrt()


def test_a_map_that_ignores_the_weights_fails_and_grad_cam_passes():
    torch.manual_seed(0)
    net = build_classifier("vgg", 1, 2, channels=(4, 8), convs_per_stage=1).eval()
    images = torch.rand(6, 1, 16, 16)
    edges = randomisation_test(net, lambda model, x: _sobel(x), images)
    assert list(edges["randomised_through"]) == ["fc", "stage2", "stage1"]
    assert edges["spearman_abs"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert not passes_sanity(edges, 0.5)

    def gradcam(model, x):
        return METHODS["gradcam"](model, "stage2")(x, 1)

    original = gradcam(net, images)
    cascade = randomisation_test(net, gradcam, images)
    assert cascade["spearman_abs"].iloc[-1] < 0.5 and passes_sanity(cascade, 0.5)
    assert torch.equal(original, gradcam(net, images))  # a copy was randomised


def test_lesion_images_fall_back_from_test_to_val_to_any():
    from types import SimpleNamespace

    from xaiseg.evaluate.picks import lesion_images

    def store(rows):
        samples = [{"split": s, "label_index": y, "has_mask": m} for s, y, m in rows]
        return SimpleNamespace(index={"classes": ["normal", "lesion"]}, samples=samples)

    rows = [("train", 1, True), ("val", 1, True), ("test", 0, True), ("test", 1, True)]
    assert lesion_images(store(rows), 5, 0) == [3]
    assert lesion_images(store(rows[:3]), 5, 0) == [1]
    assert lesion_images(store([("test", 0, True), ("val", 0, False)]), 5, 0) == [0, 1]
    picks = lesion_images(store([("test", 1, True)] * 10), 3, 7)
    assert picks == lesion_images(store([("test", 1, True)] * 10), 3, 7) and len(picks) == 3


def test_the_report_page_flags_a_map_that_fails_the_sanity_check():
    import pandas as pd

    from xaiseg.evaluate.tables import summary_html

    summary = pd.DataFrame(
        {"recipe": ["a"], "model": ["segmenter"], "split": ["test"], "dice": [0.5]}
    )
    saliency = pd.DataFrame(
        {
            "map": ["gradcam", "edges", "gradcam"],
            "split": ["test", "test", "val"],
            "pointing_game": [0.8, 0.9, 0.7],
            "sanity_passed": [True, False, None],
        }
    )
    page = summary_html(summary, saliency)
    assert "<h3>Saliency metrics</h3>" in page and "<th>pointing_game</th>" in page
    assert "<b>Failed the sanity check:</b> edges (" in page
    assert "Failed the sanity check" not in summary_html(summary, saliency.iloc[[0, 2]])
