"""classifier.candidates: several classifiers trained, the best val AUC kept as the run's."""

import dataclasses
import json

import pytest

from xaiseg.errors import XaisegError
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


def test_candidates_trained_by_jobs_of_their_own_are_only_chosen(data_dir, tmp_path):
    settings = ClassifierSettings(
        network="resnet10", epochs=1, batch_size=2, seed=1, candidates=({"seed": 2},)
    )
    out = tmp_path / "classifier"
    for k, variant in enumerate(settings.variants()):  # what the workflow's jobs do
        train_classifier(data_dir, out / "candidates" / str(k), variant)
    before = {p: p.stat().st_mtime_ns for p in (out / "candidates").rglob("*") if p.is_file()}
    metrics = train_classifier(data_dir, out, settings, candidates_trained=True)
    after = {p: p.stat().st_mtime_ns for p in (out / "candidates").rglob("*") if p.is_file()}
    assert after == before  # nothing trained or rewritten: only chosen
    kept = out / "candidates" / str(metrics["chosen_variant"])
    assert (out / "model.safetensors").read_bytes() == (kept / "model.safetensors").read_bytes()
    aucs = [v["val_auc"] for v in metrics["variants"]]
    assert metrics["chosen_variant"] == aucs.index(max(aucs))


def test_a_candidate_trained_with_other_settings_is_refused(data_dir, tmp_path):
    settings = ClassifierSettings(network="resnet10", epochs=1, batch_size=2, seed=1)
    out = tmp_path / "classifier"
    train_classifier(data_dir, out / "candidates" / "0", settings)
    train_classifier(data_dir, out / "candidates" / "1", settings)  # not seed 2
    wanted = dataclasses.replace(settings, candidates=({"seed": 2},))
    with pytest.raises(XaisegError, match=r"candidates/1: this candidate was trained with other"):
        train_classifier(data_dir, out, wanted, candidates_trained=True)
    with pytest.raises(XaisegError, match=r"candidates/2: no trained classifier candidate"):
        train_classifier(
            data_dir, out, dataclasses.replace(wanted, candidates=({}, {})),
            candidates_trained=True,
        )  # fmt: skip
    with pytest.raises(XaisegError, match=r"name no classifier\.candidates"):
        train_classifier(data_dir, out, settings, candidates_trained=True)
    assert not (out / "model.safetensors").exists()
