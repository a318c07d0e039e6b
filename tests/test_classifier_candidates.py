"""classifier.candidates: several classifiers trained, the best val AUC kept as the run's."""

import json

import pytest

from xaiseg.settings import ClassifierSettings, ConfigError
from xaiseg.train.classifier import train_classifier


def test_variants_are_the_settings_then_each_candidate_changed():
    settings = ClassifierSettings(
        epochs=7,
        network_options={"widen_factor": 0.5},
        candidates=({"network_options": {"widen_factor": 0.5, "dilate_stages": 1}},),
    )
    plain, dilated = settings.variants()
    assert plain.candidates == () and plain.network_options == {"widen_factor": 0.5}
    assert dilated.network_options == {"widen_factor": 0.5, "dilate_stages": 1}
    assert dilated.epochs == 7 and dilated.candidates == ()
    assert ClassifierSettings().variants() == [ClassifierSettings()]
    with pytest.raises(
        ConfigError, match=r"classifier\.candidates\[0\]: unknown key\(s\) \['epoch'\]"
    ):
        ClassifierSettings(candidates=({"epoch": 3},)).variants()


def test_the_candidate_of_best_val_auc_becomes_the_classifier(data_dir, tmp_path):
    settings = ClassifierSettings(
        network="resnet10", epochs=1, batch_size=2, seed=1,
        candidates=({"seed": 2}, {"learning_rate": 0.0}),
    )  # fmt: skip
    out = tmp_path / "classifier"
    metrics = train_classifier(data_dir, out, settings)
    variants = metrics["variants"]
    assert [v["changes"] for v in variants] == [{}, {"seed": 2}, {"learning_rate": 0.0}]
    aucs = [v["val_auc"] for v in variants]
    chosen = metrics["chosen_variant"]
    assert aucs[chosen] == max(aucs) and chosen == aucs.index(max(aucs))  # ties: the first
    kept = out / "candidates" / str(chosen)
    for name in ("model.safetensors", "model.json", "predictions.csv"):
        assert (out / name).read_bytes() == (kept / name).read_bytes()
    written = json.loads((out / "metrics.json").read_text())
    assert written["val"] == json.loads((kept / "metrics.json").read_text())["val"]
    assert written["chosen_variant"] == chosen
