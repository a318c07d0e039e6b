"""The label-only criterion: each recipe's U-Net's detection margin, by hand, and where
its choice is written."""

import json

import numpy as np
import pandas as pd
import pytest

from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.errors import XaisegError
from xaiseg.evaluate.criterion import (
    agreement,
    choose,
    chosen_recipe,
    detection_margin,
    image_scores,
    recipe_criterion,
    with_criterion,
)
from xaiseg.evaluate.label_choice import choose_masks, choose_segmenter, named_choice
from xaiseg.evaluate.report import criterion_lines


def test_an_image_scores_the_mean_of_its_top_share_of_pixels():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    assert image_scores(image, share=1 / 4)[0] == (12 + 13 + 14 + 15) / 4
    assert image_scores(image, share=1 / 100)[0] == 15  # at least one pixel
    wide = np.zeros((2, 32, 32), np.float32)  # 1024 px: the default share is 4 of them
    wide[0, 0, :4] = 1.0
    wide[1, 5, 5] = 1.0  # one speck: a quarter of the score
    assert image_scores(wide).tolist() == [1.0, 0.25]


def test_the_margin_is_the_mean_with_the_finding_less_the_mean_without():
    scores = np.array([0.9, 0.7, 0.2, 0.1])
    assert np.isclose(detection_margin(scores, [True, True, False, False]), 0.8 - 0.15)
    assert np.isnan(detection_margin(scores, [True] * 4))  # no image to compare with
    assert np.isnan(detection_margin(scores[:0], []))


# sample -> split, label; each recipe's U-Net: its peak probability per sample
SAMPLES = {"v0": ("val", 1), "v1": ("val", 1), "v2": ("val", 0), "v3": ("val", 0),
           "t0": ("train", 0)}  # fmt: skip
PEAKS = {
    "on-the-lesion": {"v0": 0.9, "v1": 0.7, "v2": 0.2, "v3": 0.0, "t0": 0.0},
    # Fires on every image, train ones too (which the criterion never reads).
    "everywhere": {"v0": 0.9, "v1": 0.9, "v2": 0.9, "v3": 0.7, "t0": 1.0},
}


def _stores(tmp_path, samples=SAMPLES) -> tuple:
    """A data store of 16 x 16 images (256 px: the top share is the one peak pixel) and
    each recipe's stored predictions."""
    writer = ShardWriter(tmp_path / "data", 2)
    for _ in samples:
        writer.add({"image": np.zeros((1, 16, 16), np.float32)})
    meta = [{"sample_id": s, "split": sp, "group": s, "label_index": lab}
            for s, (sp, lab) in samples.items()]  # fmt: skip
    writer.close({"samples": meta, "classes": ["normal", "lesion"]})
    folders = {}
    for recipe, peaks in PEAKS.items():
        folders[recipe] = tmp_path / recipe
        writer = ShardWriter(folders[recipe], 2)
        for sample in samples:
            probability = np.full((1, 16, 16), 0.0, np.float16)
            probability[0, 3, 4] = peaks[sample]
            writer.add({"probability": probability, "mask": (probability >= 0.5).astype(np.uint8)})
        writer.close({"samples": [{"sample_id": s} for s in samples]})
    return tmp_path / "data", folders


def test_the_recipe_whose_u_net_fires_on_the_finding_only_is_chosen(tmp_path):
    data, folders = _stores(tmp_path)
    table = recipe_criterion(data, folders, tie=0.0).set_index("recipe")
    # (0.9 + 0.7) / 2 - (0.2 + 0.0) / 2 = 0.7; (0.9 + 0.9) / 2 - (0.9 + 0.7) / 2 = 0.1
    assert np.allclose(table["detection_margin"], [0.7, 0.1], atol=1e-3)  # float16 stored
    assert table["label_choice"].tolist() == [True, False]


def test_a_folder_of_masks_alone_reads_its_masks_as_probabilities(tmp_path):
    data, _ = _stores(tmp_path)
    writer = ShardWriter(tmp_path / "masks-only", 2)
    for sample in SAMPLES:  # marks v0 and v2: one of two with, one of two without
        writer.add({"mask": np.full((1, 16, 16), sample in ("v0", "v2"), np.uint8)})
    writer.close({"samples": [{"sample_id": s} for s in SAMPLES]})
    table = recipe_criterion(data, {"masks-only": tmp_path / "masks-only"}, tie=0.0)
    assert table["detection_margin"].tolist() == [0.0]  # 1/2 - 1/2


def test_without_val_images_lacking_the_finding_nothing_is_chosen(tmp_path):
    only_lesions = {s: (sp, 1 if sp == "val" else 0) for s, (sp, _) in SAMPLES.items()}
    data, folders = _stores(tmp_path, only_lesions)
    table = recipe_criterion(data, folders, tie=0.0)
    assert table["detection_margin"].isna().all() and not table["label_choice"].any()


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
        {"recipe": ["a", "b"], "detection_margin": [0.05, 0.12], "label_choice": [False, True]}
    )
    out = with_criterion(summary, criterion)
    assert out["detection_margin"].tolist()[:4] == [0.05, 0.05, 0.12, 0.12]
    assert np.isnan(out["detection_margin"].iloc[4])
    assert out["label_choice"].tolist() == [False, False, True, True, False]
    text = "\n".join(criterion_lines(out, choice_tie=0.0))
    assert "Chosen, and the headline: **b**" in text
    assert text.index("| b | 0.120 |") < text.index("| a | 0.050 |")  # best first


# The tie rule's three candidates: val peaks (v0, v1 with the finding; v2, v3 without)
# and the flat pixels each marks on v0 (every other val image empty). c marks all of the
# train image t0, which neither criterion reads.
TIED = {
    "a": ([0.9, 0.66, 0.1, 0.1], range(0, 8)),  # margin 0.78 - 0.1 = 0.68
    "b": ([0.9, 0.7, 0.1, 0.1], range(0, 4)),  # 0.70: the best
    "c": ([0.6, 0.4, 0.1, 0.1], range(4, 12)),  # 0.40
}


def _tied(tmp_path) -> tuple:
    data, _ = _stores(tmp_path)
    folders = {}
    for recipe, (peaks, pixels) in TIED.items():
        folders[recipe] = tmp_path / f"tied-{recipe}"
        writer = ShardWriter(folders[recipe], 2)
        for sample, peak in zip(SAMPLES, [*peaks, 0.0], strict=True):
            probability = np.zeros((1, 16, 16), np.float16)
            probability[0, 15, 15] = peak
            mask = np.zeros(256, np.uint8)
            if sample == "v0":
                mask[list(pixels)] = 1
            if sample == "t0" and recipe == "c":
                mask[:] = 1
            writer.add({"probability": probability, "mask": mask.reshape(1, 16, 16)})
        writer.close({"samples": [{"sample_id": s} for s in SAMPLES]})
    return data, folders


def test_agreement_is_each_candidates_mean_pooled_dice_with_the_others(tmp_path):
    """a-b: 2 * 4 / (8 + 4) = 2/3; a-c: 2 * 4 / (8 + 8) = 1/2; b-c: 0 / 12 = 0."""
    data, folders = _tied(tmp_path)
    stored = {r: ShardStore(f) for r, f in folders.items()}
    found = agreement(stored, ShardStore(data).positions("val"))
    assert np.allclose([found[r] for r in "abc"], [(2 / 3 + 1 / 2) / 2, (2 / 3) / 2, 1 / 4])
    assert np.isnan(agreement({"a": stored["a"]}, [0, 1])["a"])  # no other to agree with


def test_within_the_tie_width_the_candidate_that_agrees_most_is_chosen(tmp_path):
    data, folders = _tied(tmp_path)
    assert chosen_recipe(recipe_criterion(data, folders, tie=0.0)) == "b"  # the best margin alone
    table = recipe_criterion(data, folders, tie=0.05)  # a (0.68) is within 0.05 of b (0.70)
    assert np.allclose(table["detection_margin"], [0.68, 0.70, 0.40], atol=2e-3)
    assert table["label_choice"].tolist() == [True, False, False]
    # c agrees least: a width that takes it in still chooses a.
    assert chosen_recipe(recipe_criterion(data, folders, tie=0.5)) == "a"
    assert chosen_recipe(recipe_criterion(data, folders, tie=0.01)) == "b"


def test_the_choice_falls_back_to_the_margin_where_agreement_cannot_tell():
    table = pd.DataFrame({"recipe": ["a", "b"], "detection_margin": [0.3, 0.3],
                          "agreement": [float("nan")] * 2})  # fmt: skip
    assert choose(table, tie=0.1) == 0  # the first of equals
    table["agreement"] = [0.2, 0.4]
    assert choose(table, tie=0.0) == 0 and choose(table, tie=0.1) == 1
    assert choose(table.assign(detection_margin=float("nan")), tie=0.1) is None


def test_the_report_names_the_tie_rule_and_every_candidates_agreement(tmp_path):
    data, folders = _tied(tmp_path)
    criterion = recipe_criterion(data, folders, tie=0.05)
    rows = [(r, "segmenter", "no masks", "val", 0.5) for r in "abc"]
    summary = pd.DataFrame(rows, columns=["recipe", "model", "setting", "split", "dice"])
    out = with_criterion(summary, criterion)
    assert np.allclose(out["agreement"], [7 / 12, 1 / 3, 1 / 4])
    text = "\n".join(criterion_lines(out, choice_tie=0.05))
    assert "within 0.05 of the best are told apart by agreement" in text
    assert "Chosen, and the headline: **a**" in text
    assert "| a | 0.680 | 0.583 |" in text


def _segmenters(tmp_path, samples=SAMPLES) -> tuple:
    """``_stores`` as segmenter folders: predictions/ beside stand-in weights."""
    data, predictions = _stores(tmp_path, samples)
    segmenters = {}
    for recipe, folder in predictions.items():
        segmenters[recipe] = tmp_path / f"pseudo-{recipe}"
        segmenters[recipe].mkdir()
        folder.rename(segmenters[recipe] / "predictions")
        (segmenters[recipe] / "model.safetensors").write_bytes(recipe.encode())
    return data, segmenters


def test_the_label_choice_artifact_holds_the_chosen_u_nets_weights(tmp_path):
    """DoLL's start (finetune.pretrained: label_choice): the chosen recipe's weights,
    byte for byte, the criterion's table and a provenance record beside them."""
    data, segmenters = _segmenters(tmp_path)
    chosen = choose_segmenter(data, segmenters, tmp_path / "label_choice", tie=0.05)
    assert chosen == "on-the-lesion"
    assert (tmp_path / "label_choice/model.safetensors").read_bytes() == b"on-the-lesion"
    table = pd.read_csv(tmp_path / "label_choice/criterion.csv")
    assert table["label_choice"].tolist() == [True, False]
    assert table.columns.tolist() == ["recipe", "detection_margin", "agreement", "label_choice"]
    provenance = json.loads((tmp_path / "label_choice/provenance.json").read_text())
    assert provenance["params"]["choice_tie"] == 0.05
    # The evaluation names the fine-tuning rows after the recipe chosen.
    rows = pd.DataFrame({"recipe": ["label_choice", "ground_truth"], "model": ["finetune"] * 2})
    assert named_choice(rows, chosen)["recipe"].tolist() == ["on-the-lesion", "ground_truth"]


def test_the_label_choice_masks_are_the_chosen_recipes_copied_whole(tmp_path):
    """The count runs' mixed U-Nets (finetune.mixed_views) train on the chosen recipe's
    pseudo-masks: its folder copied, a previous copy replaced, nothing of the other."""
    data, segmenters = _segmenters(tmp_path)
    choose_segmenter(data, segmenters, tmp_path / "label_choice", tie=0.0)
    masks = {}
    for recipe in segmenters:
        masks[recipe] = tmp_path / "masks" / recipe
        (masks[recipe] / "shards").mkdir(parents=True)
        (masks[recipe] / "shards/0.safetensors").write_text(recipe)
    out = tmp_path / "label_choice/masks"
    (out / "stale").mkdir(parents=True)
    criterion = tmp_path / "label_choice/criterion.csv"
    assert choose_masks(criterion, masks, out) == "on-the-lesion"
    assert sorted(p.name for p in out.iterdir()) == ["shards"]
    assert (out / "shards/0.safetensors").read_text() == "on-the-lesion"
    del masks["on-the-lesion"]
    with pytest.raises(XaisegError, match="'on-the-lesion' has no masks given"):
        choose_masks(criterion, masks, out)
    assert (out / "shards/0.safetensors").read_text() == "on-the-lesion"  # left as it was


def test_without_val_images_lacking_the_finding_the_label_choice_says_so(tmp_path):
    samples = {"v0": ("val", 1), "v1": ("val", 1), "t0": ("train", 0)}
    data, segmenters = _segmenters(tmp_path, samples)
    with pytest.raises(XaisegError, match="name a recipe instead"):
        choose_segmenter(data, segmenters, tmp_path / "out", tie=0.0)
    assert not (tmp_path / "out").exists()
