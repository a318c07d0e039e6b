"""The segmenter's "val_fpr" gate: chosen from val labels and the classifier's
probabilities, written into the segmenter's metrics and read back by the package."""

import json

import pandas as pd
import torch
from torch import nn

from xaiseg.data.shards import ShardStore
from xaiseg.models import NetworkSpec
from xaiseg.settings import SegmenterSettings
from xaiseg.train.segmenter import classifier_probabilities, val_fpr_gate


class Constant(nn.Module):
    """A segmenter whose every pixel is foreground (or background) whatever the image."""

    def __init__(self, foreground: bool) -> None:
        super().__init__()
        self.logits = torch.tensor([0.0, 5.0] if foreground else [5.0, 0.0]).view(1, 2, 1, 1)

    def forward(self, x):
        return self.logits.expand(len(x), 2, *x.shape[2:])


def _classifier(tmp_path, store: ShardStore, probability: dict[str, float]):
    folder = tmp_path / "classifier"
    folder.mkdir()
    rows = [
        {"sample_id": s["sample_id"], "probability": probability.get(s["sample_id"], 0.5)}
        for s in store.samples
    ]
    pd.DataFrame(rows).to_csv(folder / "predictions.csv", index=False)
    return folder


def test_the_gate_cuts_above_the_val_normals_a_firing_segmenter_would_mark(data_dir, tmp_path):
    store = ShardStore(data_dir)
    spec = NetworkSpec("segmenter", "unet", 1, ("normal", "lesion"))
    normals = [
        s["sample_id"] for s in store.samples if s["split"] == "val" and s["label"] == "normal"
    ]
    assert normals  # the fixture's val split holds an image without the finding
    classifier = classifier_probabilities(
        store, _classifier(tmp_path, store, {n: 0.3 for n in normals})
    )
    images = store.load(["image"])["image"]
    strict = SegmenterSettings(gate_threshold="val_fpr", gate_fpr=0.0)
    # Foreground everywhere: every val normal fires, so the cut lies just above 0.3.
    cut = val_fpr_gate(Constant(True), images, store, spec, classifier, torch.device("cpu"), strict)
    assert 0.3 < cut < 0.3 + 1e-9
    # A segmenter that marks nothing needs no gate; nor does one allowed every normal.
    assert (
        val_fpr_gate(Constant(False), images, store, spec, classifier, torch.device("cpu"), strict)
        == 0.0
    )
    loose = SegmenterSettings(gate_threshold="val_fpr", gate_fpr=1.0)
    assert (
        val_fpr_gate(Constant(True), images, store, spec, classifier, torch.device("cpu"), loose)
        == 0.0
    )


def test_a_trained_segmenter_records_its_gate(data_dir, tmp_path):
    from xaiseg.train.segmenter import train_segmenter

    store = ShardStore(data_dir)
    classifier = _classifier(tmp_path, store, {})
    settings = SegmenterSettings(
        epochs=1, batch_size=2, gate_threshold="val_fpr", gate_fpr=0.0,
        network_options={"channels": [4, 8], "strides": [2], "num_res_units": 1},
    )  # fmt: skip
    train_segmenter(data_dir, tmp_path / "seg", settings, classifier_dir=classifier)
    metrics = json.loads((tmp_path / "seg" / "metrics.json").read_text())
    # Every probability is 0.5: the gate is 0 (nothing to cut) or just above 0.5, and
    # then every image's mask is emptied.
    cut = metrics["gate_threshold"]
    assert cut == 0.0 or 0.5 < cut < 0.5 + 1e-9
    assert metrics["gated_empty"] == (len(store.samples) if cut else 0)
