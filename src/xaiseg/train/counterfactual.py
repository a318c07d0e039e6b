"""Train the counterfactual: an autoencoder of images without the finding.

It learns what healthy images look like, so a finding is what it cannot reconstruct.
It needs image labels only: it trains on the train split's images without the finding
and keeps the epoch whose residual best separates the val split's labels (by default;
or the lowest reconstruction error on the val split's healthy images). Which residual signals
the finding (a channel, brighter or darker than healthy) is chosen from labels too:
the candidate whose strongest evidence best separates the val split's classes.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from xaiseg.data.shards import ShardStore
from xaiseg.devices import batches, describe, resolve_device
from xaiseg.errors import XaisegError
from xaiseg.metrics import classification_metrics
from xaiseg.models import NetworkSpec, build_network, save_network
from xaiseg.models.factory import RESIDUAL_DIRECTIONS, residual_evidence
from xaiseg.models.init_weights import initialise
from xaiseg.provenance import seed_everything, write_json, write_provenance
from xaiseg.settings import CounterfactualSettings
from xaiseg.train import distributed
from xaiseg.train.data import training_batches
from xaiseg.train.fingerprint import fingerprint
from xaiseg.train.loop import fit

SELECTORS = ("evidence_auc", "l1")
TOP_FRACTION = 0.003  # an image's evidence: the mean of its strongest 0.3% of pixels


def train_counterfactual(
    data_dir: str | Path, out_dir: str | Path, settings: CounterfactualSettings
) -> dict:
    data_dir, out = Path(data_dir), Path(out_dir)
    if settings.select_by not in SELECTORS:
        raise XaisegError(f"counterfactual select_by {settings.select_by!r}: choose {SELECTORS}")
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    store = ShardStore(data_dir)
    classes = tuple(store.index["classes"])
    finding = len(classes) - 1
    train = store.load_split(["image", "label"], "train")
    val = store.load_split(["image", "label"], "val")
    healthy = train["image"][train["label"] != finding]
    val_healthy = val["image"][val["label"] != finding]
    if len(healthy) == 0 or len(val_healthy) == 0:
        raise XaisegError(f"{data_dir}: the train and val splits need images without the finding")
    spec = NetworkSpec(
        kind="reconstructor",
        network=settings.network,
        in_channels=store.index["channels"],
        classes=classes,
        spatial_dims=len(store.index["image_size"]),
        options=settings.network_options,
    )
    model = build_network(spec)
    init_inputs = initialise(model, settings.init_weights, out)
    model.to(device)
    loader = training_batches({"image": healthy}, settings, device, spatial_keys=["image"])

    def loss_fn(net: nn.Module, batch: dict) -> torch.Tensor:
        clean = batch["image"]
        noisy = clean + coarse_noise(clean, settings.noise_std, settings.noise_resolution)
        return F.l1_loss(net.reconstruct(noisy), clean)

    def healthy_l1(net: nn.Module) -> float:
        errors = [
            F.l1_loss(net.reconstruct(x.to(device)), x.to(device), reduction="sum").item()
            for x in batches(val_healthy, settings.predict_batch_size)
        ]
        return sum(errors) / val_healthy.numel()

    def evidence_auc(net: nn.Module) -> float:
        return max(choose_residual(net, val, finding, settings, device)[2].values())

    by_auc = settings.select_by == "evidence_auc"
    stamp = fingerprint(settings, "xaiseg.train.counterfactual", data_dir, *init_inputs)
    history = fit(
        model,
        loader,
        loss_fn,
        evidence_auc if by_auc else (lambda net: -healthy_l1(net)),
        settings,
        out,
        stamp,
        "counterfactual",
        device,
        floor=0.5 if by_auc else float("-inf"),  # chance: patience starts above it
    )
    if not distributed.is_main():  # torchrun's other processes: the first one writes
        return {}
    channel, direction, candidates = choose_residual(model, val, finding, settings, device)
    model.channel, model.direction = channel, direction
    options = {**spec.options, "residual_channel": channel, "residual_direction": direction}
    save_network(model, replace(spec, options=options), out)
    metrics = {
        "select_by": settings.select_by,
        "best_epoch": history["best_epoch"],
        "best_score": history["best_score"],
        "val_l1": healthy_l1(model),
        "residual_channel": channel,
        "residual_direction": direction,
        "candidates_val_auc": candidates,
        "history": history["history"],
    }
    write_json(out / "metrics.json", metrics)
    write_provenance(
        out,
        stage="counterfactual",
        params=asdict(settings),
        inputs=[data_dir, *init_inputs],
        seed=settings.seed,
        device=describe(device),
    )
    return metrics


def coarse_noise(images: torch.Tensor, std: float, resolution: int) -> torch.Tensor:
    """Smooth blobs of Gaussian noise the size of a lesion (Kascenas et al. 2022): a
    denoiser that learns to remove them learns to remove what is not healthy tissue."""
    if std <= 0:
        return torch.zeros_like(images)
    spatial = images.shape[2:]
    cells = torch.randn(*images.shape[:2], *[resolution] * len(spatial), device=images.device)
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
    return std * F.interpolate(cells, size=spatial, mode=mode, align_corners=False)


@torch.no_grad()
def choose_residual(
    model: nn.Module,
    val: dict[str, torch.Tensor],
    finding: int,
    settings: CounterfactualSettings,
    device: torch.device,
) -> tuple[int, str, dict[str, float]]:
    """The configured (channel, direction), or the one whose per-image evidence has the
    highest val AUC for the label. Returns every candidate's AUC too."""
    n_channels = val["image"].shape[1]
    channels = [settings.residual_channel]
    if settings.residual_channel is None:
        channels = [-1, *range(n_channels)] if n_channels > 1 else [0]
    directions = (
        [settings.residual_direction] if settings.residual_direction else RESIDUAL_DIRECTIONS
    )
    pairs = list(itertools.product(channels, directions))
    # Each image's evidence for every pair, batch by batch on the device: the residuals
    # never leave it (the choice runs every epoch when it picks the epoch).
    scores: list[list[torch.Tensor]] = [[] for _ in pairs]
    for x in batches(val["image"], settings.predict_batch_size):
        x = x.to(device)
        residual = x - model.reconstruct(x)
        for k, (channel, direction) in enumerate(pairs):
            scores[k].append(image_evidence(residual_evidence(residual, channel, direction)).cpu())
    positive = val["label"] == finding
    candidates: dict[str, float] = {}
    for (channel, direction), score in zip(pairs, scores, strict=True):
        auc = classification_metrics(torch.cat(score), positive)["auc"]  # NaN: one class only
        candidates[f"{channel}:{direction}"] = auc if auc == auc else 0.0
    best = max(candidates, key=candidates.get)
    channel, direction = best.split(":")
    return int(channel), direction, candidates


def image_evidence(maps: torch.Tensor) -> torch.Tensor:
    """Per image: the mean of the strongest pixels of the locally averaged map."""
    pool = {3: F.avg_pool1d, 4: F.avg_pool2d, 5: F.avg_pool3d}[maps.ndim]
    smooth = pool(maps, kernel_size=5, stride=1, padding=2).flatten(1)
    k = max(1, int(TOP_FRACTION * smooth.shape[1]))
    return smooth.topk(k, dim=1).values.mean(1)
