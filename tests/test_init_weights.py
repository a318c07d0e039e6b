"""Starting from local weights: matched by name and shape, the first convolution
adapted to another channel count, a report of every tensor, and clear errors."""

import json

import pytest
import torch

from xaiseg.cli import main
from xaiseg.errors import XaisegError
from xaiseg.models import build_classifier, build_segmenter
from xaiseg.models.init_weights import adapt_input_channels, load_matching
from xaiseg.models.spec import save_weights
from xaiseg.provenance import file_sha256

OPTIONS = {"widen_factor": 0.25}


def test_input_channels_are_summed_to_one_and_repeated_rescaled_to_more():
    rgb = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    assert adapt_input_channels(rgb, 1).flatten().tolist() == [6.0]
    four = adapt_input_channels(rgb, 4).flatten().tolist()
    assert four == pytest.approx([0.75, 1.5, 2.25, 0.75])  # [1, 2, 3, 1] x 3/4
    grey = torch.tensor([6.0]).view(1, 1, 1, 1)
    assert adapt_input_channels(grey, 3).flatten().tolist() == [2.0, 2.0, 2.0]
    assert adapt_input_channels(rgb, 3) is rgb


def test_saved_classifier_weights_start_a_network_with_another_channel_count(tmp_path):
    torch.manual_seed(0)
    source = build_classifier("resnet18", 3, 2, **OPTIONS).eval()
    save_weights(source, tmp_path / "rgb.safetensors")
    grey_net = build_classifier("resnet18", 1, 2, **OPTIONS).eval()
    report = load_matching(grey_net, tmp_path / "rgb.safetensors")
    first = next(n for n, t in source.state_dict().items() if t.ndim == 4)
    assert report["adapted"] == [f"{first}: 3 -> 1 channels"]
    assert report["skipped"] == [] and report["new"] == []
    assert len(report["loaded"]) == len(source.state_dict()) - 1
    assert report["sha256"] == file_sha256(tmp_path / "rgb.safetensors")
    adapted = grey_net.state_dict()[first]
    assert torch.allclose(adapted, source.state_dict()[first].sum(1, keepdim=True))
    # A grey image through the adapted network answers as the RGB network does to
    # that image copied into its three channels.
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(grey_net(image), source(image.repeat(1, 3, 1, 1)), atol=1e-5)


def test_tensors_that_do_not_fit_keep_their_fresh_values_and_are_reported(tmp_path):
    save_weights(build_classifier("resnet18", 3, 5, **OPTIONS), tmp_path / "five.safetensors")
    net = build_classifier("resnet18", 3, 2, **OPTIONS)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    report = load_matching(net, tmp_path / "five.safetensors")
    head = [k for k in fresh if k.startswith("fc.") or k.startswith("class_layers")]
    assert sorted(report["new"]) == sorted(head) and head
    assert all("in the file" in line for line in report["skipped"])
    assert all(torch.equal(net.state_dict()[k], fresh[k]) for k in head)


def test_a_missing_or_foreign_file_is_an_error_naming_it(tmp_path):
    net = build_classifier("resnet18", 3, 2, **OPTIONS)
    with pytest.raises(XaisegError, match=r"nowhere\.safetensors: file not found"):
        load_matching(net, tmp_path / "nowhere.safetensors")
    (tmp_path / "notes.safetensors").write_text("not weights")
    with pytest.raises(XaisegError, match=r"notes\.safetensors: not a safetensors file"):
        load_matching(net, tmp_path / "notes.safetensors")
    save_weights(torch.nn.Linear(2, 2), tmp_path / "other.safetensors")
    with pytest.raises(XaisegError, match="no tensor fits"):
        load_matching(net, tmp_path / "other.safetensors")


def test_the_classifier_stage_starts_from_the_file_and_records_it(png_dataset, tmp_path):
    sheet, _ = png_dataset
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", "normal", "lesion", "--image-size", "16"]
    assert main([*args, "--val-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    weights = tmp_path / "start.safetensors"
    save_weights(build_classifier("resnet10", 3, 2), weights)  # RGB weights, grey data
    settings = {"network": "resnet10", "epochs": 1, "batch_size": 2, "init_weights": str(weights)}
    out = tmp_path / "clf"
    args = ["train-classifier", "--data", str(tmp_path / "run" / "data"), "--out", str(out)]
    assert main([*args, "--settings", json.dumps(settings)]) == 0
    report = json.loads((out / "init_weights.json").read_text())
    assert len(report["adapted"]) == 1 and report["adapted"][0].endswith("3 -> 1 channels")
    provenance = json.loads((out / "provenance.json").read_text())
    assert file_sha256(weights) in provenance["inputs"].values()


def test_an_ensembles_file_starts_a_single_network_from_its_first_member(tmp_path):
    from xaiseg.models.ensemble import Ensemble

    torch.manual_seed(0)
    first, second = (build_classifier("resnet10", 1, 2, **OPTIONS) for _ in range(2))
    save_weights(Ensemble([first, second]), tmp_path / "pair.safetensors")
    unet = build_segmenter("resnet_unet", 1, 2, depth=10, **OPTIONS)
    report = load_matching(unet, tmp_path / "pair.safetensors")
    assert report["member"] == 0
    assert torch.equal(unet.state_dict()["layer4.0.conv2.weight"], first.layer4[0].conv2.weight)
    assert not torch.equal(first.layer4[0].conv2.weight, second.layer4[0].conv2.weight)
    # Everything of the member but its head starts the U-Net; the decoder is new.
    assert sorted(report["skipped"]) == ["fc.bias: not in the model", "fc.weight: not in the model"]
    assert report["new"] and all(n.startswith(("decoder.", "head.")) for n in report["new"])


def test_a_segmenter_starts_from_a_trained_classifier_folder(png_dataset, tmp_path):
    sheet, _ = png_dataset
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", "normal", "lesion", "--image-size", "16"]
    assert main([*args, "--val-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    data = str(tmp_path / "run" / "data")
    clf = {"network": "resnet10", "epochs": 1, "batch_size": 2}
    args = ["train-classifier", "--data", data, "--out", str(tmp_path / "clf")]
    assert main([*args, "--settings", json.dumps(clf)]) == 0
    weights = tmp_path / "clf" / "model.safetensors"
    seg = {"network": "resnet_unet", "network_options": {"depth": 10}, "epochs": 1}
    seg |= {"batch_size": 2, "init_weights": str(weights)}
    out = tmp_path / "seg"
    args = ["train-segmenter", "--data", data, "--out", str(out)]
    assert main([*args, "--settings", json.dumps(seg)]) == 0
    report = json.loads((out / "init_weights.json").read_text())
    # The whole encoder came from the classifier (its linear head has no place in it).
    assert "layer4.0.conv2.weight" in report["loaded"] and "conv1.weight" in report["loaded"]
    assert sorted(report["skipped"]) == ["fc.bias: not in the model", "fc.weight: not in the model"]
    assert all(name.startswith(("decoder.", "head.")) for name in report["new"])
    provenance = json.loads((out / "provenance.json").read_text())
    assert file_sha256(weights) in provenance["inputs"].values()
