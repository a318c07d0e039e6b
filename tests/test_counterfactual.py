"""The counterfactual map: residual evidence against a healthy reconstruction, the
residual chosen from image labels, and the stage end to end on tiny data."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from xaiseg.cli import main
from xaiseg.errors import XaisegError
from xaiseg.models import load_network
from xaiseg.models.factory import CounterfactualResidual
from xaiseg.saliency import METHODS
from xaiseg.settings import CounterfactualSettings
from xaiseg.train.counterfactual import choose_residual, image_evidence, train_counterfactual


class Constant(nn.Module):
    """A 'healthy reconstruction' that is 0.5 everywhere."""

    def forward(self, images):
        return torch.full_like(images, 0.5)


def _images():
    images = torch.full((2, 2, 4, 4), 0.5)
    images[0, 1, 1, 1] = 0.9  # brighter than healthy in channel 1
    images[0, 0, 2, 2] = 0.2  # darker than healthy in channel 0
    return images


def test_residual_evidence_by_channel_and_direction():
    images = _images()
    bright = CounterfactualResidual(Constant(), channel=1, direction="bright")(images)
    assert bright.shape == (2, 1, 4, 4)
    assert torch.isclose(bright[0, 0, 1, 1], torch.tensor(0.4))
    assert bright.sum() == bright[0, 0, 1, 1]  # nothing else is brighter
    dark = CounterfactualResidual(Constant(), channel=0, direction="dark")(images)
    assert torch.isclose(dark[0, 0, 2, 2], torch.tensor(0.3))
    both = CounterfactualResidual(Constant(), channel=-1, direction="abs")(images)
    assert torch.isclose(both[0, 0, 1, 1], torch.tensor(0.4))
    assert torch.isclose(both[0, 0, 2, 2], torch.tensor(0.3))


def test_counterfactual_network_is_n_dimensional():
    from xaiseg.models.factory import build_reconstructor

    options = {"channels": (4, 8), "strides": (2, 2), "num_res_units": 0}
    net = build_reconstructor("autoencoder", 2, 2, spatial_dims=3, **options)
    volumes = torch.rand(2, 2, 8, 8, 8)
    assert net.reconstruct(volumes).shape == volumes.shape
    assert net(volumes).shape == (2, 1, 8, 8, 8)
    assert image_evidence(net(volumes)).shape == (2,)


def test_image_evidence_is_the_mean_of_the_strongest_pooled_pixels():
    maps = torch.zeros(1, 1, 10, 10)
    maps[0, 0, 5, 5] = 25.0  # a 5x5 average spreads it to 1.0 over 25 pixels
    assert torch.isclose(image_evidence(maps), torch.tensor([1.0]))


def test_the_residual_that_separates_the_labels_is_chosen():
    rng = np.random.default_rng(0)
    images = torch.full((8, 3, 6, 6), 0.5) + torch.from_numpy(rng.normal(0, 0.01, (8, 3, 6, 6)))
    labels = torch.tensor([0, 1] * 4)
    images[labels == 1, 2, 2:4, 2:4] = 0.05  # the finding is dark in channel 2
    images[labels == 0, 0, 2:4, 2:4] = 0.05  # healthy images are dark in channel 0
    model = CounterfactualResidual(Constant())
    settings = CounterfactualSettings()
    channel, direction, candidates = choose_residual(
        model, {"image": images.float(), "label": labels}, 1, settings, torch.device("cpu")
    )
    assert (channel, direction) == (2, "dark")
    assert candidates["2:dark"] == 1.0 and candidates["-1:dark"] < 0.5
    fixed = CounterfactualSettings(residual_channel=0, residual_direction="bright")
    assert choose_residual(
        model, {"image": images.float(), "label": labels}, 1, fixed, torch.device("cpu")
    )[:2] == (0, "bright")


def _train_tiny_counterfactual(png_dataset, tmp_path, **settings) -> dict:
    """Preprocess the tiny PNG set and train a tiny counterfactual; its metrics."""
    sheet, _ = png_dataset
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", "normal", "lesion", "--image-size", "16"]
    assert main([*args, "--val-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    options = {"channels": [4, 8], "strides": [2, 2], "num_res_units": 0}
    settings = {"batch_size": 2, "network_options": options, **settings}
    args = ["train-counterfactual", "--data", str(tmp_path / "run" / "data")]
    args += ["--out", str(tmp_path / "cf"), "--settings", json.dumps(settings)]
    assert main(args) == 0
    return json.loads((tmp_path / "cf" / "metrics.json").read_text())


def test_counterfactual_stage_writes_a_model_the_saliency_stage_explains(png_dataset, tmp_path):
    metrics = _train_tiny_counterfactual(png_dataset, tmp_path, epochs=2)
    assert metrics["residual_direction"] in ("bright", "dark", "abs")
    model, spec = load_network(tmp_path / "cf")
    assert spec.kind == "reconstructor"
    assert (model.channel, model.direction) == (
        metrics["residual_channel"],
        metrics["residual_direction"],
    )
    maps = METHODS["counterfactual"](model)(torch.rand(3, 1, 16, 16), 1)
    assert maps.shape == (3, 1, 16, 16) and (maps >= 0).all()


def test_the_kept_epoch_is_the_one_whose_residual_best_separates_the_labels(png_dataset, tmp_path):
    metrics = _train_tiny_counterfactual(png_dataset, tmp_path, epochs=4, patience=10)
    scores = [h["val_score"] for h in metrics["history"]]
    assert metrics["select_by"] == "evidence_auc"
    assert metrics["best_epoch"] == 1 + scores.index(max(scores))
    # The saved network is that epoch's: its candidates score what the epoch scored.
    assert max(metrics["candidates_val_auc"].values()) == pytest.approx(max(scores))


def test_an_unknown_selection_is_refused_before_training(tmp_path):
    settings = CounterfactualSettings(select_by="val_loss")
    with pytest.raises(XaisegError, match="select_by 'val_loss'"):
        train_counterfactual(tmp_path / "nowhere", tmp_path / "cf", settings)
