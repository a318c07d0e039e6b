"""One training loop: epochs, validation score, best checkpoint, exact resume, early stop.

After every epoch the full training state is saved under ``<out>/checkpoint/``. Every
random draw of an epoch (shuffle order, augmentation, dropout) is seeded from
``(seed, epoch)``, so a run killed in epoch k and rerun ends with the same weights as a
run never interrupted. A finished run is not resumed: a rerun trains again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from xaiseg.devices import autocast
from xaiseg.errors import XaisegError
from xaiseg.models.spec import load_weights, save_weights
from xaiseg.settings import TrainingSettings
from xaiseg.train import distributed
from xaiseg.train.checkpoint import claimed, load_training_state, save_training_state
from xaiseg.train.device_batches import DeviceBatches

ScoreFn = Callable[[nn.Module], float]
LossFn = Callable[[nn.Module, dict], torch.Tensor]


LR_SCHEDULES = ("constant", "cosine")
CHECKPOINTS = ("best", "last")


def epoch_learning_rate(settings: TrainingSettings, epoch: int) -> float:
    """The rate of epoch ``epoch`` (from 1), from the settings alone: resume needs no state."""
    if settings.lr_schedule == "constant":
        return settings.learning_rate
    if settings.lr_schedule == "cosine":  # half a cosine over the epochs, ending near 0
        return (
            settings.learning_rate * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / settings.epochs))
        )
    raise XaisegError(f"lr_schedule {settings.lr_schedule!r}: choose one of {LR_SCHEDULES}")


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**31


def reseed_epoch(loader: DataLoader | DeviceBatches, seed: int, epoch: int) -> None:
    """Seed every generator the epoch draws from, from (seed, epoch) alone."""
    value = epoch_seed(seed, epoch)
    torch.manual_seed(value)
    if hasattr(loader, "reseed"):  # batches made on the device
        loader.reseed(value)
        return
    if isinstance(loader.generator, torch.Generator):
        loader.generator.manual_seed(value)
    if hasattr(loader.dataset, "epoch_seed"):  # each item seeds its own augmentation
        loader.dataset.epoch_seed = value
        return
    transform = getattr(loader.dataset, "transform", None)
    if hasattr(transform, "set_random_state"):
        transform.set_random_state(value)


def fit(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: LossFn,
    score_fn: ScoreFn,
    settings: TrainingSettings,
    out_dir: Path,
    fingerprint: str,
    desc: str,
    device: torch.device | None = None,
    floor: float = float("-inf"),
) -> dict:
    """Train ``model`` in place; returns the history. Best weights end up in ``model``.

    Early stopping waits until a score first beats ``floor`` (what a trivial model
    scores): a network still on a trivial plateau is not out of patience yet.
    """
    settings = at_least_steps(settings, len(loader))
    ckpt = Path(out_dir) / "checkpoint"
    # Under torchrun the first process writes the checkpoints; the others only read.
    with claimed(ckpt) if distributed.is_main() else contextlib.nullcontext():
        return _fit(
            model, loader, loss_fn, score_fn, settings, ckpt, fingerprint, desc, device, floor
        )


def at_least_steps(settings: TrainingSettings, batches_per_epoch: int) -> TrainingSettings:
    """``settings`` with enough epochs for ``min_steps`` optimiser steps."""
    needed = math.ceil(settings.min_steps / max(batches_per_epoch, 1))
    if needed <= settings.epochs:
        return settings
    return dataclasses.replace(settings, epochs=needed)


def parameter_groups(model: nn.Module, settings: TrainingSettings) -> list[dict]:
    """The optimiser's groups: a network that names its ``encoder_modules`` (a U-Net
    started from the classifier) has them train at ``encoder_lr_scale`` of the rate, as
    a pretrained backbone is fine-tuned. Frozen parameters (``freeze_encoder``) are
    left out."""
    scale = getattr(settings, "encoder_lr_scale", 1.0)
    names = getattr(model, "encoder_modules", ())
    trained = [p for p in model.parameters() if p.requires_grad]
    if scale == 1.0 or not names:
        return [{"params": trained}]
    encoder = {id(p) for name in names for p in getattr(model, name).parameters()}
    rest = [p for p in trained if id(p) not in encoder]
    inside = [p for p in trained if id(p) in encoder]
    groups = [{"params": rest}]
    if inside:  # none when frozen
        groups.append({"params": inside, "lr_scale": scale})
    return groups


def freeze_encoder(model: nn.Module) -> None:
    """Freeze the modules ``model`` names as its ``encoder_modules`` outright: no
    gradient is computed through them (over a third of a ``resnet_unet`` step's time,
    ``benchmarks/segmenter_step.py``) and their batch norms keep the statistics they
    were loaded with."""
    for name in model.encoder_modules:
        module = getattr(model, name)
        module.requires_grad_(False)
        module.register_forward_pre_hook(_stay_in_eval)


def _stay_in_eval(module: nn.Module, args: tuple) -> None:
    module.eval()  # model.train() each epoch would otherwise update its statistics


def _fit(model, loader, loss_fn, score_fn, settings, ckpt, fingerprint, desc, device, floor):
    device = device or torch.device("cpu")
    epoch_learning_rate(settings, 1)  # an unknown schedule fails before any work
    if settings.checkpoint not in CHECKPOINTS:
        raise XaisegError(f"checkpoint {settings.checkpoint!r}: choose one of {CHECKPOINTS}")
    last = settings.checkpoint == "last"  # every epoch replaces the kept one: no early stop
    if getattr(settings, "encoder_lr_scale", 1.0) == 0 and hasattr(model, "encoder_modules"):
        freeze_encoder(model)
    if device.type == "cuda":  # NHWC convolutions: the tensor cores' own layout
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, settings),
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
    )
    average = averaged_model(model, settings.ema_decay)
    meta = load_training_state(ckpt, model, optimizer, fingerprint, average) or {
        "epoch": 0,
        "best_score": float("-inf"),
        "best_epoch": 0,
        "history": [],
    }
    meta.setdefault("left_floor", False)
    net, main = distributed.wrap(model, device), distributed.is_main()
    net = torch.compile(net) if settings.compile else net
    if meta["epoch"]:
        print(f"{desc}: resuming after epoch {meta['epoch']} (best {meta['best_score']:.4f})")
    # min_steps is a floor on training, not only on the epoch count: patience starts
    # counting once they are done (lgg40's dilated classifier: val AUC 0.901 at epoch 2,
    # stopped at 10 of 20; trained to 20, its best was epoch 18, 0.905).
    first_stop = math.ceil(settings.min_steps / max(len(loader), 1))
    for epoch in range(meta["epoch"] + 1, settings.epochs + 1):
        waited = epoch - meta["best_epoch"]
        if meta["left_floor"] and waited > settings.patience and epoch > first_stop:
            print(f"{desc}: early stop at epoch {epoch - 1}", flush=True)
            break
        tick = time.perf_counter()
        reseed_epoch(loader, settings.seed, epoch)
        rate = epoch_learning_rate(settings, epoch)
        for group in optimizer.param_groups:
            group["lr"] = rate * group.get("lr_scale", 1.0)
        train_loss = _train_epoch(
            net, loader, loss_fn, optimizer, device, settings.precision, f"{desc} {epoch}",
            None if average is None else lambda: average.update_parameters(model),
        )  # fmt: skip
        scored = model if average is None else average.module
        scored.eval()
        score = None
        # "last" keeps the schedule's final epoch: the val split is scored there alone
        # (lgg40's five-mask fine-tuning: most of its time went to scoring every epoch).
        if not last or epoch == settings.epochs:
            with torch.no_grad():
                score = float(score_fn(scored))
        meta["history"].append(
            {
                "epoch": epoch,
                "loss": train_loss,
                "learning_rate": rate,
                "val_score": score,
                "seconds": time.perf_counter() - tick,
            }
        )
        shown = "not scored" if score is None else f"{score:.4f}"
        print(f"{desc} epoch {epoch}: loss {train_loss:.4f} val {shown}", flush=True)
        if score is not None:
            meta["left_floor"] = meta["left_floor"] or score > floor
            if score > meta["best_score"] or meta["best_epoch"] == 0 or last:
                meta.update(best_score=score, best_epoch=epoch)
                if main:
                    save_weights(scored, ckpt / "best.safetensors")
        meta["epoch"] = epoch
        if main:
            save_training_state(
                ckpt, model, optimizer, {**meta, "fingerprint": fingerprint}, average
            )
    if not main:  # the first process writes what the others learnt with it
        return meta
    save_training_state(
        ckpt, model, optimizer, {**meta, "fingerprint": fingerprint, "finished": True}, average
    )
    load_weights(model, ckpt / "best.safetensors")
    model.eval()
    return meta


def averaged_model(model: nn.Module, decay: float) -> AveragedModel | None:
    """The exponential moving average of ``model``'s weights and buffers (BatchNorm's
    statistics too, so the average is a network of its own); None when ``decay`` is 0."""
    if not 0 <= decay < 1:
        raise XaisegError(f"ema_decay {decay}: must be at least 0 and below 1 (0: off)")
    if decay == 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _train_epoch(
    model, loader, loss_fn, optimizer, device, precision: str, desc: str, after_step=None
) -> float:
    model.train()
    # Summed on the device in float64 (what Python's float did, step by step): no
    # wait for the GPU at every step.
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=5):
        # Tensors only: MONAI may add its transform records beside them.
        batch = {
            k: v.to(device, non_blocking=True)
            for k, v in batch.items()
            if isinstance(v, torch.Tensor)
        }
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        if after_step is not None:  # e.g. the weights' moving average
            after_step()
        total += loss.detach().double() * len(batch["image"])
        count += len(batch["image"])
    total, count = distributed.summed([total.item(), count], device)  # over torchrun's processes
    return total / max(count, 1)
