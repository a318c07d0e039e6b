import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader

from xaiseg.errors import XaisegError
from xaiseg.settings import TrainingSettings as FitSettings
from xaiseg.train.loop import averaged_model, epoch_learning_rate, fit


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


def _fit_scored(tmp_path, scores, settings, **options):
    """Train the tiny model with validation scores taken from ``scores``, in order."""
    model, loader, loss_fn = _setup()
    values = iter(scores)
    return fit(
        model, loader, loss_fn, lambda net: next(values), settings, tmp_path, "x", "t", **options
    )


def test_early_stop_after_patience(tmp_path):
    scores = [1.0, 0.5, 0.4, 0.3, 0.2, 0.1]
    meta = _fit_scored(tmp_path, scores, FitSettings(epochs=6, patience=2))
    assert meta["best_epoch"] == 1 and len(meta["history"]) == 3


def test_the_last_checkpoint_keeps_the_last_epoch_and_never_stops_early(tmp_path):
    """Scores that would stop "best" after epoch 3 (patience 2): "last" trains all 6,
    scores the val split once, at epoch 6, and keeps the weights it ended with."""
    scores = [1.0, 0.5, 0.4, 0.3, 0.2, 0.1]
    settings = FitSettings(epochs=6, patience=2, checkpoint="last")
    meta = _fit_scored(tmp_path, scores, settings)
    assert meta["best_epoch"] == 6 and meta["best_score"] == 1.0  # the first score drawn
    assert [h["val_score"] for h in meta["history"]] == [None] * 5 + [1.0]
    kept = load_file(str(tmp_path / "checkpoint" / "best.safetensors"))
    last = load_file(str(tmp_path / "checkpoint" / "last.safetensors"))
    assert all(torch.equal(kept[k], last[f"model.{k}"]) for k in kept)
    with pytest.raises(XaisegError, match="checkpoint 'first'"):
        _fit_scored(tmp_path / "b", scores, FitSettings(epochs=2, checkpoint="first"))


def test_fingerprint_sees_shard_values_not_only_the_index(tmp_path):
    from xaiseg.settings import ClassifierSettings
    from xaiseg.train.fingerprint import fingerprint

    data = tmp_path / "data"
    data.mkdir()
    (data / "index.json").write_text("{}")
    (data / "shard-00000.safetensors").write_bytes(b"values one")
    settings = ClassifierSettings()
    before = fingerprint(settings, "xaiseg.train.classifier", data)
    (data / "shard-00000.safetensors").write_bytes(b"values two")  # same index, new tensors
    assert fingerprint(settings, "xaiseg.train.classifier", data) != before
    assert fingerprint(
        ClassifierSettings(epochs=3), "xaiseg.train.classifier", data
    ) != fingerprint(settings, "xaiseg.train.classifier", data)


class Killed(Exception):
    pass


def _augmented_setup():
    """A shuffled loader with a MONAI random transform and dropout: every RNG in play."""
    from xaiseg.train.data import augmentation, dict_dataset, seeded_generator

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 2))
    images = torch.rand(24, 1, 8, 8)
    labels = torch.arange(24) % 2
    data = dict_dataset({"image": images, "label": labels}, augmentation(["image"]))
    loader = DataLoader(data, batch_size=6, shuffle=True, generator=seeded_generator(0))
    loss = nn.CrossEntropyLoss()
    return model, loader, lambda net, b: loss(net(b["image"]), b["label"])


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "checkpoint" / "last.safetensors"))


def test_learning_rate_schedules_by_hand():
    cosine = FitSettings(epochs=4, learning_rate=1.0, lr_schedule="cosine")
    rates = [epoch_learning_rate(cosine, e) for e in (1, 2, 3, 4)]
    # 0.5 * (1 + cos(pi * k / 4)) for k = 0..3
    assert rates == pytest.approx([1.0, 0.853553, 0.5, 0.146447], abs=1e-6)
    assert epoch_learning_rate(FitSettings(learning_rate=0.3), 7) == 0.3
    with pytest.raises(XaisegError, match="lr_schedule 'step'"):
        epoch_learning_rate(FitSettings(lr_schedule="step"), 1)


@pytest.mark.parametrize(
    ("schedule", "ema_decay"), [("constant", 0.0), ("cosine", 0.0), ("constant", 0.9)]
)
def test_kill_mid_epoch_then_rerun_gives_identical_weights(tmp_path, schedule, ema_decay):
    settings = FitSettings(epochs=4, patience=10, seed=3, lr_schedule=schedule, ema_decay=ema_decay)
    model, loader, loss_fn = _augmented_setup()
    fit(model, loader, loss_fn, lambda net: 0.5, settings, tmp_path / "clean", "fp", "t")

    model, loader, loss_fn = _augmented_setup()
    batches = []

    def dies_in_epoch_3(net, batch):
        batches.append(1)
        if len(batches) == 2 * len(loader) + 2:  # the third batch of epoch 3
            raise Killed
        return loss_fn(net, batch)

    with pytest.raises(Killed):
        fit(
            model,
            loader,
            dies_in_epoch_3,
            lambda net: 0.5,
            settings,
            tmp_path / "killed",
            "fp",
            "t",
        )
    model, loader, loss_fn = _augmented_setup()  # a new process: fresh model and RNGs
    meta = fit(model, loader, loss_fn, lambda net: 0.5, settings, tmp_path / "killed", "fp", "t")
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3, 4]
    rates = [h["learning_rate"] for h in meta["history"]]
    assert rates == [epoch_learning_rate(settings, e) for e in (1, 2, 3, 4)]
    clean, resumed = _weights(tmp_path / "clean"), _weights(tmp_path / "killed")
    assert clean.keys() == resumed.keys()
    for key in clean:
        assert torch.equal(clean[key], resumed[key]), key


def test_finished_training_is_not_reused(tmp_path):
    """A forced rerun with the same fingerprint trains again instead of returning the
    old model after zero epochs."""
    model, loader, loss_fn = _setup()
    fit(model, loader, loss_fn, lambda net: 0.5, FitSettings(epochs=2), tmp_path, "same", "t")
    model, loader, loss_fn = _setup()
    meta = fit(
        model, loader, loss_fn, lambda net: 0.5, FitSettings(epochs=2), tmp_path, "same", "t"
    )
    assert [h["epoch"] for h in meta["history"]] == [1, 2]


def test_code_hash_follows_real_imports(tmp_path):
    import shutil

    from tests.conftest import ROOT
    from xaiseg.codehash import code_hash, import_closure

    closure = import_closure("xaiseg.train.classifier")
    assert "xaiseg.metrics" in closure  # the selection metric is training code
    assert "xaiseg.masks" not in closure and "xaiseg.saliency" not in closure
    masks = import_closure("xaiseg.masks.build")
    assert "xaiseg.masks.otsu" in masks and "xaiseg.saliency.gradcam" not in masks

    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "xaiseg", src / "xaiseg")
    before = code_hash("xaiseg.train.classifier", src)
    metrics = src / "xaiseg" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n# a changed selection metric\n")
    after = code_hash.__wrapped__("xaiseg.train.classifier", src)
    assert after != before
    otsu = src / "xaiseg" / "masks" / "otsu.py"
    otsu.write_text(otsu.read_text() + "\n# unrelated to training\n")
    assert code_hash.__wrapped__("xaiseg.train.classifier", src) == after


def test_patience_waits_until_the_trivial_plateau_is_left(tmp_path):
    """A segmenter predicting nothing scores the share of empty masks for many epochs;
    early stopping must not end it there (the demo's HiRes-CAM recipe left it at 24)."""
    scores = [0.46, 0.47, 0.46, 0.46, 0.46, 0.9, 0.8, 0.7, 0.6, 0.5]
    meta = _fit_scored(tmp_path, scores, FitSettings(epochs=10, patience=2), floor=0.5)
    assert meta["best_epoch"] == 6 and len(meta["history"]) == 8


def test_a_folder_another_live_process_trains_into_is_refused_until_it_ends(tmp_path):
    """A job left running by a stopped workflow and its rerun must not share a folder."""
    import socket
    import subprocess
    import sys

    from xaiseg.errors import XaisegError

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = tmp_path / "checkpoint" / "owner.json"
    owner.parent.mkdir()
    owner.write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid}))
    model, loader, loss_fn = _setup()
    settings = FitSettings(epochs=1)
    try:
        with pytest.raises(XaisegError, match=f"process {other.pid} on this machine"):
            fit(model, loader, loss_fn, lambda net: 1.0, settings, tmp_path, "fp", "t")
        assert not (tmp_path / "checkpoint" / "last.json").exists()  # nothing written
    finally:
        other.kill()
        other.wait()
    meta = fit(model, loader, loss_fn, lambda net: 1.0, settings, tmp_path, "fp", "t")
    assert meta["epoch"] == 1 and not owner.exists()  # the dead claim taken over, then dropped


def _epoch_batches(workers: int, epoch: int) -> list[torch.Tensor]:
    from xaiseg.train.data import augmentation, dict_dataset, training_loader
    from xaiseg.train.loop import reseed_epoch

    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    data = dict_dataset({"image": images, "index": torch.arange(10)}, augmentation(["image"]))
    threads = torch.get_num_threads()
    torch.set_num_threads(workers + 1)  # the job's threads: one trains, the rest load
    try:
        loader = training_loader(data, batch_size=4, seed=5)
    finally:
        torch.set_num_threads(threads)
    assert loader.num_workers == workers
    reseed_epoch(loader, 5, epoch)
    return [torch.cat([b["image"].flatten(1), b["index"][:, None].float()], 1) for b in loader]


def test_loader_workers_give_the_same_batches_as_the_main_process():
    """Each item draws its augmentation from (epoch, index): two worker processes give
    the batches, order and augmented pixels of the main process alone."""
    alone, in_workers = _epoch_batches(0, epoch=2), _epoch_batches(2, epoch=2)
    assert len(alone) == 3
    for a, b in zip(alone, in_workers, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # Another epoch: another order and other draws.
    other = torch.cat(_epoch_batches(0, epoch=3))
    assert not torch.equal(torch.cat(alone), other)
    by_index = {int(r[-1]): r[:-1] for r in torch.cat(alone)}
    assert any(not torch.equal(by_index[i], r[:-1]) for i, r in ((int(r[-1]), r) for r in other))


def test_min_steps_lengthens_the_epochs_of_a_small_dataset():
    from xaiseg.settings import ClassifierSettings
    from xaiseg.train.loop import at_least_steps

    settings = ClassifierSettings(epochs=5, min_steps=23)
    assert at_least_steps(settings, 4).epochs == 6  # ceil(23 / 4) batches per epoch
    assert at_least_steps(settings, 5).epochs == 5  # 25 steps already: unchanged
    assert at_least_steps(ClassifierSettings(epochs=5), 1).epochs == 5  # off by default


def test_patience_waits_until_min_steps_are_done(tmp_path):
    """Four batches per epoch, min_steps 24: six epochs before patience may stop it, so
    the late best score (epoch 6) is found; without min_steps it stops after epoch 3."""
    scores = [0.9, 0.5, 0.5, 0.5, 0.5, 0.95, 0.5, 0.5, 0.5, 0.5]
    plain = _fit_scored(tmp_path / "a", scores, FitSettings(epochs=10, patience=2))
    assert plain["best_epoch"] == 1 and len(plain["history"]) == 3
    floor = FitSettings(epochs=10, patience=2, min_steps=24)
    meta = _fit_scored(tmp_path / "b", scores, floor)
    assert meta["best_epoch"] == 6 and len(meta["history"]) == 8


def test_hide_and_seek_covers_squares_only_when_asked():
    """Off, the augmentation is the one every run had; on, 8 to 16 squares of an eighth
    of the side (8 px at 64) are noise: between one 8x8 square and 16 of them."""
    from monai.transforms import RandCoarseDropoutd

    from xaiseg.train.data import augmentation

    plain = augmentation(["image"], 2)
    hiding = augmentation(["image"], 2, hide_patches=1.0, side=64)
    assert not any(isinstance(t, RandCoarseDropoutd) for t in plain.transforms)
    hide = next(t for t in hiding.transforms if isinstance(t, RandCoarseDropoutd))
    hide.set_random_state(0)
    image = torch.linspace(0, 1, 64 * 64).reshape(1, 64, 64)  # every pixel its own value
    changed = (hide({"image": image.clone()})["image"] != image).sum().item()
    assert 64 <= changed <= 16 * 64
    kept = image.clone()
    hiding.set_random_state(0)
    hiding({"image": kept})
    assert torch.equal(kept, image)  # the stored training image is never written


@pytest.mark.parametrize("on_device", [False, True])
def test_a_kept_orientation_keeps_the_top_on_top(on_device):
    """A bright top band, augmented 64 times: with ``flip_axes: [1]`` and no quarter
    turns the band stays in the top half every time (the affine turns by 0.3 rad at most,
    shifts by 4 px); with the defaults some draws flip or turn it away."""
    from xaiseg.train.data import training_batches

    image = torch.zeros(64, 1, 32, 32)
    image[:, :, :4] = 1.0

    def tops(**orientation) -> torch.Tensor:
        settings = FitSettings(
            batch_size=64, augment_on="device" if on_device else "workers", **orientation
        )
        batch = next(
            iter(
                training_batches(
                    {"image": image}, settings, torch.device("cpu"), spatial_keys=["image"]
                )
            )
        )
        bright = batch["image"] > 0.5  # contrast and noise leave the band above a half
        return bright[..., :16, :].sum((1, 2, 3)) > bright[..., 16:, :].sum((1, 2, 3))

    assert tops(flip_axes=(1,), quarter_turns=False).all()
    assert not tops().all()


def test_the_moving_average_by_hand():
    """First update copies the weights; then each step weighs 1 - decay. BatchNorm's
    running statistics are averaged the same way."""
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    average = averaged_model(net, 0.75)
    for value in (4.0, 8.0, 0.0):
        with torch.no_grad():
            net[0].weight.fill_(value)
            net[1].running_mean.fill_(value / 2)
        average.update_parameters(net)
    # 4, then 0.75 * 4 + 0.25 * 8 = 5, then 0.75 * 5 + 0.25 * 0 = 3.75
    assert average.module[0].weight.item() == pytest.approx(3.75)
    assert average.module[1].running_mean.item() == pytest.approx(1.875)
    assert averaged_model(net, 0.0) is None
    with pytest.raises(XaisegError, match="ema_decay 1"):
        averaged_model(net, 1.0)


def test_with_ema_the_average_is_scored_and_kept(tmp_path):
    settings = FitSettings(epochs=3, patience=10, ema_decay=0.5)
    model, loader, loss_fn = _setup()
    scored = []
    meta = fit(
        model, loader, loss_fn, lambda net: len(scored.append(net) or scored), settings,
        tmp_path, "e", "t",
    )  # fmt: skip
    assert meta["best_epoch"] == 3 and all(net is not model for net in scored)
    last = _weights(tmp_path)  # the last step's raw weights and their average
    raw, average = last["model.1.weight"], last["average.module.1.weight"]
    assert not torch.equal(raw, average)
    assert torch.equal(model[1].weight.detach(), average)  # the average is kept


class _EncoderDecoder(nn.Sequential):
    encoder_modules = ("1",)  # as ResNetUNet names its encoder's modules


def test_an_encoder_at_zero_share_of_the_rate_is_frozen_as_loaded(tmp_path):
    from xaiseg.settings import SegmenterSettings

    _, loader, loss_fn = _setup()
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model = _EncoderDecoder(nn.Flatten(), encoder, nn.ReLU(), nn.Linear(4, 2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    settings = SegmenterSettings(epochs=2, patience=10, encoder_lr_scale=0.0)
    meta = fit(model, loader, loss_fn, lambda net: 1.0, settings, tmp_path, "fp", "t")
    assert [h["learning_rate"] for h in meta["history"]] == [2e-3, 2e-3]
    after = model.state_dict()
    # Weights and the batch norm's statistics alike: the training images moved nothing.
    for key in ("1.0.weight", "1.1.weight", "1.1.running_mean", "1.1.running_var"):
        assert torch.equal(after[key], start[key]), key
    assert after["1.1.num_batches_tracked"] == 0
    assert not torch.equal(after["3.weight"], start["3.weight"])
    assert all(p.grad is None for p in encoder.parameters())  # no backward through it
    model.train()
    model(torch.ones(2, 1, 2, 2))
    assert not encoder.training  # held in eval whenever it runs


def test_the_encoder_group_gets_its_share_and_plain_networks_one_group():
    from xaiseg.models import build_segmenter
    from xaiseg.settings import SegmenterSettings
    from xaiseg.train.loop import freeze_encoder, parameter_groups

    unet = build_segmenter("resnet_unet", 1, 2, depth=10)
    groups = parameter_groups(unet, SegmenterSettings(encoder_lr_scale=0.1))
    encoder = sum(
        p.numel() for name in unet.encoder_modules for p in getattr(unet, name).parameters()
    )
    assert [g.get("lr_scale", 1.0) for g in groups] == [1.0, 0.1]
    assert sum(p.numel() for p in groups[1]["params"]) == encoder
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(
        p.numel() for p in unet.parameters()
    )
    assert (
        len(
            parameter_groups(build_segmenter("unet", 1, 2), SegmenterSettings(encoder_lr_scale=0.1))
        )
        == 1
    )
    assert len(parameter_groups(unet, SegmenterSettings())) == 1
    freeze_encoder(unet)  # what fit does at a zero share: one group, the encoder left out
    (frozen,) = parameter_groups(unet, SegmenterSettings(encoder_lr_scale=0.0))
    assert (
        sum(p.numel() for p in frozen["params"])
        == sum(p.numel() for p in unet.parameters()) - encoder
    )
