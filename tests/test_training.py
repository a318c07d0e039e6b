import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from xaiseg.train.loop import FitSettings, fit


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    data = [{"image": torch.randn(1, 2, 2), "label": torch.tensor(i % 2)} for i in range(16)]
    loader = DataLoader(data, batch_size=4)
    loss = nn.CrossEntropyLoss()
    return model, loader, lambda net, b: loss(net(b["image"]), b["label"])


class Interrupt(Exception):
    pass


def test_interrupted_training_resumes_at_next_epoch(tmp_path):
    model, loader, loss_fn = _setup()
    calls = []

    def score_then_die(net):
        calls.append(1)
        if len(calls) == 3:
            raise Interrupt  # killed during epoch 3's validation
        return float(len(calls))

    settings = FitSettings(epochs=5, patience=10)
    with pytest.raises(Interrupt):
        fit(model, loader, loss_fn, score_then_die, settings, tmp_path, "fp", "t")
    assert json.loads((tmp_path / "checkpoint" / "last.json").read_text())["epoch"] == 2

    model2, loader, loss_fn = _setup()
    meta = fit(model2, loader, loss_fn, lambda net: 1.0, settings, tmp_path, "fp", "t")
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3, 4, 5]
    assert meta["best_epoch"] == 2  # epoch 2 scored 2.0, later epochs 1.0


def test_changed_fingerprint_starts_over(tmp_path):
    model, loader, loss_fn = _setup()
    fit(model, loader, loss_fn, lambda net: 0.5, FitSettings(epochs=2), tmp_path, "a", "t")
    model, loader, loss_fn = _setup()
    meta = fit(model, loader, loss_fn, lambda net: 0.5, FitSettings(epochs=3), tmp_path, "b", "t")
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3]


def test_early_stop_after_patience(tmp_path):
    model, loader, loss_fn = _setup()
    scores = iter([1.0, 0.5, 0.4, 0.3, 0.2, 0.1])
    meta = fit(
        model,
        loader,
        loss_fn,
        lambda net: next(scores),
        FitSettings(epochs=6, patience=2),
        tmp_path,
        "x",
        "t",
    )
    assert meta["best_epoch"] == 1 and len(meta["history"]) == 3


def test_fingerprint_sees_shard_values_not_only_the_index(tmp_path):
    from xaiseg.train.classifier import ClassifierSettings, fingerprint

    data = tmp_path / "data"
    data.mkdir()
    (data / "index.json").write_text("{}")
    (data / "shard-00000.safetensors").write_bytes(b"values one")
    settings = ClassifierSettings()
    before = fingerprint(settings, data)
    (data / "shard-00000.safetensors").write_bytes(b"values two")  # same index, new tensors
    assert fingerprint(settings, data) != before
    assert fingerprint(ClassifierSettings(epochs=3), data) != fingerprint(settings, data)
