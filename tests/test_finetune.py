"""DoLL: pseudo-mask pretraining fine-tuned on a few masks, against scratch."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from xaiseg.errors import XaisegError
from xaiseg.evaluate.report import count_lines
from xaiseg.evaluate.tables import (
    comparisons,
    dice_against_count,
    dice_against_fraction,
    parse_evaluated,
    summary_html,
    summary_table,
    to_markdown,
)
from xaiseg.models import NetworkSpec, build_network
from xaiseg.models.init_weights import average_with_start
from xaiseg.provenance import seed_everything
from xaiseg.settings import FinetuneSettings, SegmenterSettings
from xaiseg.train.segmenter import mask_subset, train_segmenter

TINY_UNET = {"channels": [4, 8], "strides": [2], "num_res_units": 1}


def test_the_mask_draw_keeps_the_share_of_lesions_and_the_other_splits():
    train = np.array([True] * 10 + [False] * 4)
    usable = np.ones(14, bool)
    positive = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0], bool)
    settings = SegmenterSettings(mask_fraction=0.5, mask_seed=7)
    keep = mask_subset(train, usable, positive, settings)
    assert keep[~train].all()  # val and test keep their masks
    assert keep[train & positive].sum() == 2 and keep[train & ~positive].sum() == 3
    assert np.array_equal(keep, mask_subset(train, usable, positive, settings))  # seeded
    other = mask_subset(train, usable, positive, SegmenterSettings(mask_fraction=0.5, mask_seed=8))
    assert not np.array_equal(keep, other)
    tiny = mask_subset(train, usable, positive, SegmenterSettings(mask_fraction=0.01))
    assert keep.sum() > tiny.sum() and tiny[train & positive].sum() == 1  # one of each


def test_a_mask_count_draws_that_many_lesions_and_the_others_in_their_share():
    # 6 train lesions, 9 train images without; 4 masks: 4 lesions, round(4 / 6 * 9) = 6
    # others; val and test untouched; more than there are: all of them.
    train = np.array([True] * 15 + [False] * 3)
    usable = np.ones(18, bool)
    positive = np.array([True] * 6 + [False] * 9 + [True, False, True])
    keep = mask_subset(train, usable, positive, SegmenterSettings(mask_count=4, mask_seed=1))
    assert keep[train & positive].sum() == 4 and keep[train & ~positive].sum() == 6
    assert keep[~train].all()
    every = mask_subset(train, usable, positive, SegmenterSettings(mask_count=50))
    assert every.all()
    # The count that equals a fraction's draw is that draw, image for image.
    share = SegmenterSettings(mask_fraction=4 / 6, mask_seed=1)
    assert np.array_equal(keep, mask_subset(train, usable, positive, share))


def test_runs_repeat_small_fractions_over_seeds_only():
    runs = FinetuneSettings("ig", fractions=(0.1, 1.0), seeds=(0, 4)).runs()
    assert runs == [(0.1, 0), (0.1, 4), (1.0, 0)]


def _frozen(seed: int, init: Path | None = None, **changes) -> SegmenterSettings:
    """One epoch at learning rate 0: the saved weights are the starting weights."""
    return SegmenterSettings(
        epochs=1, batch_size=2, seed=seed, learning_rate=0.0, weight_decay=0.0,
        network_options=TINY_UNET, init_weights=str(init) if init else None, **changes,
    )  # fmt: skip


def test_fine_tuning_starts_from_the_pretrained_weights_and_scratch_from_its_seed(
    data_dir, tmp_path
):
    pretrained = tmp_path / "pretrained"
    train_segmenter(data_dir, pretrained, SegmenterSettings(epochs=1, batch_size=2, seed=5,
                                                            network_options=TINY_UNET))  # fmt: skip
    start = pretrained / "model.safetensors"
    train_segmenter(data_dir, tmp_path / "ft", _frozen(2, start, mask_fraction=0.5))
    tuned, original = load_file(str(tmp_path / "ft" / "model.safetensors")), load_file(str(start))
    assert tuned.keys() == original.keys()
    assert all(torch.equal(tuned[k], original[k]) for k in original)

    train_segmenter(data_dir, tmp_path / "scratch", _frozen(2, mask_fraction=0.5))
    spec = NetworkSpec("segmenter", "unet", 1, ("normal", "lesion"), options=TINY_UNET)
    seed_everything(2)
    fresh = build_network(spec).state_dict()
    scratch = load_file(str(tmp_path / "scratch" / "model.safetensors"))
    assert all(torch.equal(scratch[k], fresh[k]) for k in fresh)
    assert not all(torch.equal(scratch[k], original[k]) for k in original)


def test_count_runs_are_their_own_rows_and_stay_off_the_fraction_table():
    thing = parse_evaluated("label_choice:finetune/k5/2:x")
    assert (thing.model, thing.fraction, thing.masks, thing.seed) == ("finetune", None, 5, 2)
    rows = [
        {"sample_id": f"s{i}", "recipe": t.recipe, "model": t.model, "fraction": t.fraction,
         "masks": t.masks, "seed": t.seed, "truth_positive": True, "pred_positive": True,
         "dice": d, "iou": d, "hd95": 1.0, "split": "test", "group": f"g{i}"}
        for t, dices in ((thing, (0.5, 0.7)), (parse_evaluated("r:finetune/0.05/2:y"), (0.1, 0.3)))
        for i, d in enumerate(dices)
    ]  # fmt: skip
    summary = summary_table(pd.DataFrame(rows))
    counted = summary[summary["masks"] == 5].iloc[0]
    assert counted["setting"] == "5 train masks" and np.isnan(counted["fraction"])
    assert counted["dice"] == pytest.approx(0.6)
    assert list(dice_against_fraction(summary)["fraction"]) == [0.05]
    # masks and seed are counts: 5 and 2 in the tables, not 5.000
    assert "| 5 train masks |  | 5 | 2 | test |" in to_markdown(summary)
    assert "<td>5 train masks</td>\n      <td></td>\n      <td>5</td>" in summary_html(summary)
    scratch = [{**r, "recipe": "ground_truth", "model": "scratch", "dice": r["dice"] - 0.2}
               for r in rows]  # fmt: skip
    pairs = comparisons(pd.DataFrame(rows + scratch))
    counted = pairs[pairs["a"] == "label_choice:finetune@k5/s2"].iloc[0]
    assert counted["b"] == "ground_truth:scratch@k5/s2"
    assert counted["difference"] == pytest.approx(0.2)


def test_dice_against_fraction_averages_seeds_per_model():
    things = [parse_evaluated(f"ig:finetune/0.05/{s}:x") for s in (0, 1)]
    things += [parse_evaluated("ground_truth:scratch/1/0:y")]
    assert (things[1].model, things[1].fraction, things[1].seed) == ("finetune", 0.05, 1)
    rows = []
    for thing, dices in zip(things, ([0.2, 0.4], [0.6, 0.8], [0.9, 0.7]), strict=True):
        for i, dice in enumerate(dices):
            rows.append({
                "sample_id": f"s{i}", "recipe": thing.recipe, "model": thing.model,
                "fraction": thing.fraction, "seed": thing.seed, "truth_positive": True,
                "pred_positive": True, "dice": dice, "iou": dice, "hd95": 1.0,
                "split": "test", "group": "g",
            })  # fmt: skip
    summary = summary_table(pd.DataFrame(rows))
    assert list(summary["setting"]) == ["5% of train masks"] * 2 + ["100% of train masks"]
    table = dice_against_fraction(summary)
    finetune = table[table["model"] == "finetune"].iloc[0]
    # seed means 0.3 and 0.7: mean 0.5, sample standard deviation sqrt(0.08)
    assert finetune["runs"] == 2 and finetune["dice_mean"] == pytest.approx(0.5)
    assert finetune["dice_sd"] == pytest.approx(np.sqrt(0.08))
    assert table[table["model"] == "scratch"]["dice_sd"].isna().all()


def test_count_runs_are_averaged_over_their_draws_against_the_supervised_u_net():
    rows = [
        {
            "recipe": "ground_truth",
            "model": "supervised",
            "fraction": np.nan,
            "masks": np.nan,
            "seed": np.nan,
            "split": "test",
            "dice": 0.75,
            "false_positive_rate": 0.0,
        },
        {
            "recipe": "ground_truth",
            "model": "supervised",
            "fraction": np.nan,
            "masks": np.nan,
            "seed": np.nan,
            "split": "val",
            "dice": 0.5,
            "false_positive_rate": 0.0,
        },
    ]
    draws = {
        ("finetune", 5, "test"): (0.4, 0.6, 0.5),
        ("finetune", 5, "val"): (0.3, 0.2, 0.1),
        ("scratch", 5, "test"): (0.2, 0.1, 0.3),
        ("finetune", 20, "test"): (0.7,),
    }
    for (model, k, split), dices in draws.items():
        rows += [
            {
                "recipe": "r" if model == "finetune" else "ground_truth",
                "model": model,
                "fraction": np.nan,
                "masks": k,
                "seed": seed,
                "split": split,
                "dice": d,
                "false_positive_rate": seed / 4,
            }
            for seed, d in enumerate(dices)
        ]
    share = {**rows[-1], "fraction": 0.05, "masks": np.nan}  # a share, not a count
    summary = pd.DataFrame([*rows, share])
    table = dice_against_count(summary).set_index(["split", "model", "masks"])
    k5 = table.loc[("test", "finetune", 5)]
    # mean 0.5, sample sd 0.1, 0.5 / 0.75 of the supervised; fpr (0 + 0.25 + 0.5) / 3
    assert (k5["runs"], k5["dice_mean"], k5["dice_sd"]) == (
        3,
        pytest.approx(0.5),
        pytest.approx(0.1),
    )
    assert k5["of_supervised"] == pytest.approx(2 / 3)
    assert k5["false_positive_rate"] == pytest.approx(0.25)
    assert table.loc[("val", "finetune", 5), "of_supervised"] == pytest.approx(0.4)
    assert np.isnan(table.loc[("test", "finetune", 20), "dice_sd"])  # one draw
    assert len(table) == 4  # the share's row is not a count
    report = "\n".join(count_lines(summary))
    assert "| 5 | finetune | 3 | 0.500 | 0.100 | 0.67x |" in report
    assert "| 20 | finetune | 1 | 0.700 |  | 0.93x |" in report
    assert "| 5 | scratch | 3 | 0.200 | 0.100 | 0.27x |" in report
    assert count_lines(summary[summary["masks"].isna()]) == []


def _all_foreground_masks(data_dir: Path, folder: Path) -> Path:
    """A recipe's masks that mark every pixel of every image (a useless recipe)."""
    from xaiseg.data.shards import ShardStore, ShardWriter

    store = ShardStore(data_dir)
    writer = ShardWriter(folder, store.index["shard_size"])
    for _ in store.sample_ids:
        writer.add({"mask": np.ones((1, 16, 16), np.uint8)})
    writer.close({"samples": [{"sample_id": s} for s in store.sample_ids]})
    return folder


def test_a_mask_count_with_pseudo_masks_mixes_in_the_drawn_truth_and_repeats_it(
    data_dir, tmp_path, monkeypatch
):
    # The fixture's train split: one lesion (a 4 x 4 square) and one image without it.
    # One mask: the lesion and round(1 / 1 * 1) = 1 other are drawn, so both train
    # images learn their ground truth (16 and 0 pixels) instead of the 256-pixel
    # pseudo-masks, which the val images keep; each is seen 3 times an epoch: 6 items.
    from xaiseg.data.shards import ShardStore
    from xaiseg.train import segmenter

    masks = _all_foreground_masks(data_dir, tmp_path / "masks")
    seen = {}
    original = segmenter.training_batches

    def counting(tensors, *args, **kwargs):
        seen["targets"] = tensors["mask"].flatten(1).sum(1).tolist()
        return original(tensors, *args, **kwargs)

    monkeypatch.setattr(segmenter, "training_batches", counting)
    settings = SegmenterSettings(
        epochs=1, batch_size=2, network_options=TINY_UNET, mask_count=1, mask_repeat=3
    )
    metrics = train_segmenter(data_dir, tmp_path / "mixed", settings, masks_dir=masks)
    assert sorted(seen["targets"]) == [0, 0, 0, 16, 16, 16]
    assert metrics["n_train"] == 2 and metrics["n_ground_truth"] == 2
    store = ShardStore(data_dir)
    split = np.array([s["split"] for s in store.samples])
    pseudo = ShardStore(masks).load(["mask"])["mask"]
    usable = torch.ones(len(split), dtype=torch.bool)
    mixed, _, drawn = segmenter._apply_draw(store, pseudo, usable, split, settings, pseudo=True)
    assert drawn.tolist() == (split == "train").tolist()
    assert mixed[split == "val"].flatten(1).sum(1).tolist() == [256, 256]


def test_mask_repeat_needs_a_draw_to_repeat(data_dir, tmp_path):
    from xaiseg.errors import XaisegError

    masks = _all_foreground_masks(data_dir, tmp_path / "masks")
    settings = SegmenterSettings(epochs=1, network_options=TINY_UNET, mask_repeat=3)
    with pytest.raises(XaisegError, match="mask_repeat"):
        train_segmenter(data_dir, tmp_path / "none", settings, masks_dir=masks)
    on_truth = SegmenterSettings(epochs=1, network_options=TINY_UNET, mask_count=1, mask_repeat=3)
    with pytest.raises(XaisegError, match="pass the masks"):  # ground truth: nothing to mix
        train_segmenter(data_dir, tmp_path / "truth", on_truth)
    with pytest.raises(XaisegError, match="at least 1"):
        train_segmenter(data_dir, tmp_path / "zero", SegmenterSettings(mask_repeat=0))


def test_averaging_with_the_start_takes_its_share_of_every_float_tensor():
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        model[0].bias.fill_(-1.0)
        model[1].running_mean.fill_(4.0)
    model[1].num_batches_tracked.fill_(7)
    start = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    start["0.weight"] = torch.full((1, 1), 6.0)
    average_with_start(model, start, 0.25)
    # 0.25 * start + 0.75 * own: weight 0.25*6 + 0.75*2 = 3, bias -0.75, mean 3
    assert model[0].weight.item() == 3.0 and model[0].bias.item() == -0.75
    assert model[1].running_mean.item() == 3.0
    assert model[1].num_batches_tracked.item() == 7  # a counter, not a weight
    with pytest.raises(XaisegError, match=r"share in \[0, 1\]"):
        average_with_start(model, start, 1.5)


def test_a_fine_tuned_unet_keeps_its_share_of_the_start(data_dir, tmp_path):
    # The fixture's train split holds one image with the finding: tuned on n = 1 mask, a
    # start worth s = 3 masks keeps 3 / (3 + 1) = 0.75 of the start's weights.
    pretrained = tmp_path / "pretrained"
    tiny = {"epochs": 1, "batch_size": 2, "network_options": TINY_UNET}
    train_segmenter(data_dir, pretrained, SegmenterSettings(seed=5, **tiny))
    start = pretrained / "model.safetensors"
    tuned = {"seed": 2, "init_weights": str(start), **tiny}
    plain = train_segmenter(data_dir, tmp_path / "ft", SegmenterSettings(**tuned))
    assert plain["start_share"] == 0.0
    summary = train_segmenter(data_dir, tmp_path / "avg", SegmenterSettings(start_masks=3, **tuned))
    assert summary["start_share"] == 0.75
    begin, end = load_file(str(start)), load_file(str(tmp_path / "ft" / "model.safetensors"))
    kept = load_file(str(tmp_path / "avg" / "model.safetensors"))
    weight = "model.0.conv.unit0.conv.weight"
    assert not torch.equal(begin[weight], end[weight])  # the fine-tuning moved it
    for name, tensor in kept.items():
        if tensor.is_floating_point():
            expected = 0.75 * begin[name] + 0.25 * end[name]
            assert torch.allclose(tensor, expected, atol=1e-6), name
        else:
            assert torch.equal(tensor, end[name]), name
    with pytest.raises(XaisegError, match="init_weights: none is set"):
        train_segmenter(data_dir, tmp_path / "none", SegmenterSettings(start_masks=3, **tiny))
    with pytest.raises(XaisegError, match="start_masks: at least 0, got -1"):
        train_segmenter(data_dir, tmp_path / "neg", SegmenterSettings(start_masks=-1, **tuned))
    masks = _all_foreground_masks(data_dir, tmp_path / "masks")
    with pytest.raises(XaisegError, match="trains on pseudo-masks"):
        weighed = SegmenterSettings(start_masks=3, **tuned)
        train_segmenter(data_dir, tmp_path / "pm", weighed, masks_dir=masks)
