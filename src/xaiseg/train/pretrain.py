"""Self-supervised pretraining of the classifier's network on the run's own images,
labels unused: SimCLR-style contrastive learning (Chen et al. 2020).

Two augmented views of each image pass through the network whose classification head
is replaced by a small projection head; MONAI's ``ContrastiveLoss`` (NT-Xent) pulls the
two views of one image together and pushes the batch's other images away. The epoch
kept has the lowest contrastive loss on the val split's images (fixed views). The
network is saved without its projection head, under the classifier's own tensor names,
so ``classifier.init_weights`` loads every layer but the head, and its report
(``init_weights.json``) says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch
from monai.losses import ContrastiveLoss
from monai.transforms import (
    Compose,
    CopyItemsd,
    RandCoarseDropoutd,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandShiftIntensityd,
)
from torch import nn

from xaiseg.data.shards import ShardStore
from xaiseg.devices import autocast, batches, describe, resolve_device
from xaiseg.errors import XaisegError
from xaiseg.models import build_network
from xaiseg.models.init_weights import initialise
from xaiseg.models.spec import save_weights
from xaiseg.provenance import seed_everything, write_json, write_provenance
from xaiseg.settings import PretrainSettings
from xaiseg.train import distributed
from xaiseg.train.classifier import classifier_spec
from xaiseg.train.data import augmentation, dict_dataset, training_loader
from xaiseg.train.fingerprint import fingerprint
from xaiseg.train.loop import fit


def two_views(
    spatial_dims: int, flip_axes: Sequence[int] | None = None, quarter_turns: bool = True
) -> Compose:
    """``image`` and ``view``: the same image, augmented twice independently (the
    trainers' flips and affine, plus blur, intensity shifts and cut-out patches)."""
    orientation = {"flip_axes": flip_axes, "quarter_turns": quarter_turns}

    def strong(key: str) -> list:
        return [
            *augmentation([key], spatial_dims, image_key=key, **orientation).transforms[:-1],
            RandGaussianSmoothd(key, prob=0.3, sigma_x=(0.25, 1.0), sigma_y=(0.25, 1.0)),
            RandScaleIntensityd(key, factors=0.2, prob=0.8),
            RandShiftIntensityd(key, offsets=0.1, prob=0.8),
            RandCoarseDropoutd(key, holes=4, spatial_size=8, max_spatial_size=16, prob=0.5),
        ]

    image_tail = augmentation(["image", "view"], spatial_dims).transforms[-1]  # ToTensord
    return Compose(
        [CopyItemsd("image", names="view"), *strong("image"), *strong("view"), image_tail]
    )


def head_name(model: nn.Module) -> str:
    """The classification head: the network's last linear layer."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise XaisegError("pretrain: the network has no linear head to replace")
    return linear[-1]


def with_projection(model: nn.Module, dim: int) -> nn.Module:
    """Replace the head, in place, by Linear-ReLU-Linear to ``dim`` features."""
    name = head_name(model)
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    head: nn.Linear = getattr(parent, leaf)
    width = head.in_features
    setattr(parent, leaf, nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, dim)))
    return model


def backbone_state(model: nn.Module, head: str) -> dict[str, torch.Tensor]:
    """Every tensor but the projection head's, under the classifier's names."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(head + ".")}


def pretrain(data_dir: str | Path, out_dir: str | Path, settings: PretrainSettings) -> dict:
    if not settings.network:
        raise XaisegError("pretrain: name the network (the workflow passes the classifier's)")
    if not settings.splits or set(settings.splits) - {"train", "val"}:
        raise XaisegError(f"pretrain.splits: train and/or val, got {list(settings.splits)}")
    if settings.augment_on == "device":
        raise XaisegError("pretrain.augment_on: device is not built for two views; use workers")
    settings = replace(settings, network_options=settings.network_options or {})
    data_dir, out = Path(data_dir), Path(out_dir)
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    store = ShardStore(data_dir)
    spec = classifier_spec(store, settings)  # the network it will start
    model = build_network(spec)
    init_inputs = initialise(model, settings.init_weights, out)
    head = head_name(model)
    model = with_projection(model, settings.projection_dim).to(device)
    images = torch.cat([store.load_split(["image"], s)["image"] for s in settings.splits])
    val = store.load_split(["image"], "val")["image"]
    if len(images) < 2 * settings.batch_size or len(val) < 2:
        raise XaisegError(
            f"{data_dir}: {len(images)} images in {list(settings.splits)} and {len(val)} in val;"
            f" contrastive pretraining needs two batches of {settings.batch_size} and two val"
        )
    views = two_views(spec.spatial_dims, settings.flip_axes, settings.quarter_turns)
    # drop_last: a batch of one has no negatives.
    train_set = dict_dataset({"image": images}, views)
    loader = training_loader(train_set, settings.batch_size, settings.seed, drop_last=True)
    criterion = ContrastiveLoss(temperature=settings.temperature)
    val_views = _fixed_views(val, views, settings.seed)

    def loss_fn(net: nn.Module, batch: dict) -> torch.Tensor:
        return criterion(net(batch["image"]), net(batch["view"]))

    def val_score(net: nn.Module) -> float:
        return -contrastive_loss(net, val_views, criterion, settings, device)

    stamp = fingerprint(settings, "xaiseg.train.pretrain", data_dir, *init_inputs)
    history = fit(model, loader, loss_fn, val_score, settings, out, stamp, "pretrain", device)
    if not distributed.is_main():  # torchrun's other processes: the first one writes
        return {}
    # The head is left out, so the classifier's report names it newly initialised.
    save_weights(backbone_state(model, head), out / "model.safetensors")
    write_json(out / "model.json", asdict(spec))
    metrics = {
        "best_epoch": history["best_epoch"],
        "val_contrastive_loss": -history["best_score"],
        "images": len(images),
        "splits": list(settings.splits),
        "head_left_out": head,
        "history": history["history"],
    }
    write_json(out / "metrics.json", metrics)
    write_provenance(
        out,
        stage="pretrain",
        params=asdict(settings),
        inputs=[data_dir, *init_inputs],
        seed=settings.seed,
        device=describe(device),
    )
    return metrics


def _fixed_views(images: torch.Tensor, views: Compose, seed: int) -> tuple[torch.Tensor, ...]:
    views.set_random_state(seed)
    pairs = [views({"image": image}) for image in images]
    return torch.stack([p["image"] for p in pairs]), torch.stack([p["view"] for p in pairs])


@torch.no_grad()
def contrastive_loss(net, views, criterion, settings: PretrainSettings, device) -> float:
    """The mean NT-Xent over batches of the fixed val views."""
    net.eval()
    first, second = views
    losses = []
    for a, b in zip(
        batches(first, settings.batch_size), batches(second, settings.batch_size), strict=True
    ):
        if len(a) < 2:
            continue
        with autocast(device, settings.precision):
            losses.append(float(criterion(net(a.to(device)).float(), net(b.to(device)).float())))
    return sum(losses) / max(len(losses), 1)
