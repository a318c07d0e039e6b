"""Self-supervised pretraining: two views per image, a projection head in place of the
classifier's, and weights a classifier starts from, every layer but its head."""

import json

import pytest
import torch
from safetensors.torch import load_file

from xaiseg.cli import main
from xaiseg.models import build_classifier
from xaiseg.provenance import seed_everything
from xaiseg.train.pretrain import backbone_state, head_name, two_views, with_projection

OPTIONS = {"widen_factor": 0.25}


@pytest.mark.parametrize(("network", "head"), [("resnet10", "fc"), ("vgg", None)])
def test_the_last_linear_layer_becomes_the_projection(network, head):
    net = build_classifier(network, 1, 2)
    name = head_name(net)
    assert name == head or (head is None and isinstance(net.get_submodule(name), torch.nn.Linear))
    projected = with_projection(net, 16).eval()
    assert projected(torch.rand(3, 1, 32, 32)).shape == (3, 16)
    kept = backbone_state(projected, name)
    assert kept and not any(k.startswith(name + ".") for k in kept)
    fresh = build_classifier(network, 1, 2).state_dict()
    assert set(kept) == {k for k in fresh if not k.startswith(name + ".")}


def test_each_view_gets_every_random_transform_of_its_own():
    drawn = {"image": [], "view": []}
    for transform in two_views(2).transforms:
        if type(transform).__name__.startswith("Rand"):
            (key,) = transform.keys
            drawn[key].append(type(transform).__name__)
    assert drawn["image"] == drawn["view"] and "RandGaussianNoised" in drawn["view"]


def test_two_views_are_two_draws_of_one_image():
    views = two_views(2)
    views.set_random_state(3)
    image = torch.rand(1, 24, 24)
    pair = views({"image": image})
    assert pair["image"].shape == pair["view"].shape == image.shape
    assert not torch.equal(pair["image"], pair["view"])
    views.set_random_state(3)
    again = views({"image": image})
    assert torch.equal(pair["image"], again["image"]) and torch.equal(pair["view"], again["view"])


def test_a_classifier_starts_from_the_pretrained_network_but_its_head(data_dir, tmp_path):
    out = tmp_path / "pretrain"
    settings = {"network_options": OPTIONS, "splits": ["train", "val"], "projection_dim": 8}
    args = ["pretrain", "--data", str(data_dir), "--out", str(out), "--network", "resnet10"]
    args += ["--epochs", "2", "--batch-size", "2", "--settings", json.dumps(settings)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["head_left_out"] == "fc" and len(metrics["history"]) == 2
    assert metrics["images"] == 4 and metrics["best_epoch"] in (1, 2)
    weights = load_file(str(out / "model.safetensors"))
    seed_everything(0)
    fresh = build_classifier("resnet10", 1, 2, **OPTIONS).state_dict()
    head = {"fc.weight", "fc.bias"}
    assert set(weights) == set(fresh) - head  # the classifier's names, its head left out
    assert not torch.equal(weights["conv1.weight"], fresh["conv1.weight"])  # it learnt

    classifier = tmp_path / "classifier"
    frozen = {"network": "resnet10", "network_options": OPTIONS, "epochs": 1, "batch_size": 2}
    frozen |= {"learning_rate": 0.0, "weight_decay": 0.0}
    frozen["init_weights"] = str(out / "model.safetensors")
    args = ["train-classifier", "--data", str(data_dir), "--out", str(classifier)]
    assert main([*args, "--settings", json.dumps(frozen)]) == 0
    started = load_file(str(classifier / "model.safetensors"))
    # learning rate 0: the parameters stay as loaded (BatchNorm statistics still move)
    params = dict(build_classifier("resnet10", 1, 2, **OPTIONS).named_parameters())
    assert all(torch.equal(started[k], weights[k]) for k in params if k not in head)
    report = json.loads((classifier / "init_weights.json").read_text())
    assert len(report["loaded"]) == len(weights) and not report["skipped"]
    assert sorted(report["new"]) == sorted(head)


def test_pretraining_never_learns_from_test_images(data_dir, tmp_path):
    settings = '{"network": "resnet10", "splits": ["train", "test"]}'
    args = ["pretrain", "--data", str(data_dir), "--out", str(tmp_path / "p")]
    assert main([*args, "--settings", settings]) == 2
    assert not (tmp_path / "p" / "model.safetensors").exists()
