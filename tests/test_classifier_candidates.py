"""classifier.candidates: several classifiers trained, the best val AUC kept as the run's."""

import dataclasses
import json

import numpy as np
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


ENSEMBLE = ClassifierSettings(
    network="resnet10", epochs=1, batch_size=2, seed=1, candidates=({"seed": 2},), ensemble=True
)


def test_an_ensemble_keeps_every_candidate_and_predicts_their_mean(data_dir, tmp_path):
    import pandas as pd
    import torch

    from xaiseg.data.shards import ShardStore
    from xaiseg.models import load_network
    from xaiseg.models.ensemble import Ensemble

    assert [(v.seed, v.ensemble) for v in ENSEMBLE.variants()] == [(1, False), (2, False)]
    out = tmp_path / "classifier"
    metrics = train_classifier(data_dir, out, ENSEMBLE)
    assert [m["changes"] for m in metrics["members"]] == [{}, {"seed": 2}]
    alone = [pd.read_csv(out / "candidates" / k / "predictions.csv") for k in "01"]
    kept = pd.read_csv(out / "predictions.csv")
    mean = (alone[0]["probability"] + alone[1]["probability"]) / 2
    assert kept["probability"].to_numpy() == pytest.approx(mean.to_numpy(), abs=1e-6)
    model, spec = load_network(out)
    assert isinstance(model, Ensemble) and spec.network == "ensemble"
    assert [m["network"] for m in spec.options["members"]] == ["resnet10", "resnet10"]
    images = ShardStore(data_dir).load_split(["image"], "val")["image"]
    members = [load_network(out / "candidates" / k)[0] for k in "01"]
    with torch.no_grad():
        expected = torch.stack([m(images).softmax(1) for m in members]).mean(0)
        assert torch.allclose(model(images).softmax(1), expected, atol=1e-6)
    with pytest.raises(XaisegError, match="ensemble: name its members"):
        train_classifier(data_dir, tmp_path / "alone", dataclasses.replace(ENSEMBLE, candidates=()))


def test_an_ensembles_map_is_the_mean_of_its_members_peak_scaled_maps(data_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    from xaiseg.data.artifacts import raw_maps
    from xaiseg.saliency.compute import compute_saliency
    from xaiseg.saliency.members import peak_scaled
    from xaiseg.settings import MapSettings, SaliencySettings

    out = tmp_path / "classifier"
    train_classifier(data_dir, out, ENSEMBLE)
    maps = SaliencySettings(maps={"gradcam": MapSettings(target_layer="layer3")})
    for model in ("", "candidates/0", "candidates/1"):
        compute_saliency(data_dir, out / model, tmp_path / "maps" / model, "gradcam", maps)

    def read(folder):
        return raw_maps(load_file(tmp_path / "maps" / folder / "shard-00000.safetensors"))

    expected = (peak_scaled(read("candidates/0")) + peak_scaled(read("candidates/1"))) / 2
    assert torch.allclose(read(""), expected, atol=2e-3)  # maps are stored as float16


KEPT_ORIENTATION = {"flip_axes": [1], "quarter_turns": False}


def test_each_alternative_is_trained_with_every_candidate():
    settings = ClassifierSettings(
        candidates=({"seed": 1},), ensemble=True, alternatives=(KEPT_ORIENTATION,)
    )
    variants = settings.variants()
    assert [(v.seed, v.flip_axes, v.quarter_turns) for v in variants] == [
        (0, None, True), (1, None, True), (0, (1,), False), (1, (1,), False)
    ]  # fmt: skip
    assert all(v.candidates == () == v.alternatives and not v.ensemble for v in variants)
    assert settings.alternative_variants() == [range(0, 2), range(2, 4)]
    assert settings.changes() == [
        {},
        {"seed": 1},
        KEPT_ORIENTATION,
        {**KEPT_ORIENTATION, "seed": 1},
    ]
    assert ClassifierSettings(candidates=({"seed": 1},)).alternative_variants() == [range(2)]
    with pytest.raises(ConfigError, match=r"alternatives\[0\]: \['ensemble'\] cannot change"):
        ClassifierSettings(alternatives=({"ensemble": False},)).variants()
    with pytest.raises(ConfigError, match=r"alternatives\[1\]: unknown key\(s\) \['flipaxes'\]"):
        ClassifierSettings(alternatives=({}, {"flipaxes": [1]})).variants()


def _auc(probability: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney by hand: the share of (positive, negative) pairs ranked right."""
    pos, neg = probability[positive], probability[~positive]
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return float(wins.mean())


def test_the_alternative_whose_ensemble_has_the_best_val_auc_is_kept(data_dir, tmp_path):
    import pandas as pd
    import torch

    from xaiseg.models import load_network

    settings = dataclasses.replace(ENSEMBLE, alternatives=({"learning_rate": 0.0},))
    out = tmp_path / "classifier"
    metrics = train_classifier(data_dir, out, settings)
    alone = [pd.read_csv(out / "candidates" / str(k) / "predictions.csv") for k in range(4)]
    val = alone[0]["split"] == "val"
    positive = (alone[0]["label"] == "lesion")[val].to_numpy()
    by_hand = [
        _auc(((alone[a]["probability"] + alone[b]["probability"]) / 2)[val].to_numpy(), positive)
        for a, b in ((0, 1), (2, 3))
    ]  # each alternative's ensemble: the mean probability of its two seeds
    recorded = [a["val_auc"] for a in metrics["alternatives"]]
    assert recorded == pytest.approx(by_hand, abs=1e-6)
    assert [a["variants"] for a in metrics["alternatives"]] == [[0, 1], [2, 3]]
    chosen = metrics["chosen_alternative"]
    assert chosen == recorded.index(max(recorded))  # ties: the first
    assert metrics["val"]["auc"] == pytest.approx(recorded[chosen], abs=1e-6)
    kept = [2 * chosen, 2 * chosen + 1]
    assert [m["changes"] for m in metrics["members"]] == [settings.changes()[k] for k in kept]
    model, _ = load_network(out)
    for member, k in zip(model.members, kept, strict=True):
        trained = load_network(out / "candidates" / str(k))[0].state_dict()
        assert all(torch.equal(v, trained[n]) for n, v in member.state_dict().items())
    written = json.loads((out / "metrics.json").read_text())
    assert written["chosen_alternative"] == chosen


def test_member_mean_by_hand():
    import torch

    from xaiseg.saliency.members import MemberMean

    def returns(values):
        return lambda images, target, extra: torch.tensor(values).view(1, 1, 1, -1)

    mean = MemberMean([returns([2.0, -4.0]), returns([1.0, 1.0]), returns([0.0, 0.0])])
    # peaks 4, 1 and none: [0.5, -1], [1, 1], [0, 0] -> mean [0.5, 0]
    assert mean(None, 0).flatten().tolist() == pytest.approx([0.5, 0.0])
