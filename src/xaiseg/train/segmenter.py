"""Train a MONAI U-Net on pseudo-masks (or on ground truth, the upper bound).

With pseudo-masks, model selection uses the pseudo-masks of the validation split:
ground truth is never looked at, or the "weak" result would not be weak. Pixels a
recipe marked ``ignore`` are left out of the loss and of the validation Dice.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xaiseg.data.artifacts import IGNORE, read_gate, read_probabilities
from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.devices import autocast, batches, describe, resolve_device
from xaiseg.errors import XaisegError
from xaiseg.metrics import false_positive_gate, mean_dice, pooled_dice
from xaiseg.models import NetworkSpec, build_network, save_network
from xaiseg.models.init_weights import average_with_start, initialise
from xaiseg.provenance import seed_everything, write_json, write_provenance
from xaiseg.settings import SegmenterSettings
from xaiseg.train import distributed
from xaiseg.train.data import training_batches
from xaiseg.train.fingerprint import fingerprint
from xaiseg.train.loop import fit
from xaiseg.train.losses import MaskedDiceCELoss


def _training_data(
    store: ShardStore, masks_dir: Path | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, target masks and which samples may be trained on, joined by sample_id."""
    if masks_dir is None:
        tensors = store.load(["image", "mask", "has_mask"])
        return tensors["image"], tensors["mask"], tensors["has_mask"].bool()
    masks = ShardStore(masks_dir)
    images, targets = [], []
    for _ids, (data, pseudo) in store.iter_joined(masks):
        images.append(data["image"])
        targets.append(pseudo["mask"])
    images_t = torch.cat(images)
    return images_t, torch.cat(targets), torch.ones(len(images_t), dtype=torch.bool)


def _positive(targets: torch.Tensor) -> np.ndarray:
    return (targets.flatten(1) == 1).any(1).numpy()


def mask_subset(
    train: np.ndarray, usable: np.ndarray, positive: np.ndarray, settings: SegmenterSettings
) -> np.ndarray:
    """Which train images keep their mask: ``mask_fraction`` of the usable ones (or
    ``mask_count`` images with the finding, the others in that share), drawn with
    ``mask_seed`` among images with and without the finding separately (at least one
    of each that exists), so a small draw keeps the split's share of lesions. Other
    splits are untouched. Its own generator: the network's initialisation, drawn from
    ``settings.seed``, is the same at every fraction."""
    rng = np.random.default_rng(settings.mask_seed)
    keep = ~train
    share = settings.mask_fraction
    if settings.mask_count:
        lesions = int((train & usable & positive).sum())
        share = min(1.0, settings.mask_count / lesions) if lesions else 1.0
    for stratum in (positive, ~positive):
        pool = np.flatnonzero(train & usable & stratum)
        if len(pool):
            n = max(1, round(share * len(pool)))
            keep[rng.choice(pool, size=n, replace=False)] = True
    return keep


def _apply_draw(
    store: ShardStore,
    targets: torch.Tensor,
    usable: torch.Tensor,
    split: np.ndarray,
    settings: SegmenterSettings,
    pseudo: bool,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The train images a ``mask_fraction`` / ``mask_count`` draw keeps their ground
    truth (``mask_subset``). On ground truth the others leave training; on pseudo-masks
    the drawn ones train on their ground truth in place of their pseudo-masks (a user's
    few masks beside the masks the labels gave every image). Returns the targets, which
    images train, and which were drawn."""
    train = split == "train"
    truth = store.load(["mask", "has_mask"]) if pseudo else {"mask": targets, "has_mask": usable}
    has_mask = truth["has_mask"].bool().numpy()
    drawn = train & mask_subset(train, has_mask, _positive(truth["mask"]), settings)
    if not pseudo:
        return targets, usable & torch.from_numpy(~train | drawn), drawn
    mixed, rows = targets.clone(), torch.from_numpy(drawn)
    mixed[rows] = truth["mask"][rows].to(targets.dtype)
    return mixed, usable, drawn


@torch.no_grad()
def predict_masks(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    precision: str = "fp32",
    *,
    batch_size: int,
) -> torch.Tensor:
    """Foreground probability (N, 1, *spatial), on the CPU, ``batch_size`` at a time."""
    model.eval()
    out = []
    for batch in batches(images, batch_size):
        with autocast(device, precision):
            out.append(model(batch.to(device)).float().softmax(1)[:, 1:].cpu())
    return torch.cat(out)


# segmenter.val_dice -> the score of (predicted, target) masks of the val images
VAL_DICE = {"per_image": mean_dice, "pooled": pooled_dice}


def val_scorer(how: str):
    if how not in VAL_DICE:
        raise XaisegError(f"segmenter.val_dice {how!r}: choose one of {sorted(VAL_DICE)}")
    return VAL_DICE[how]


def masked_dice(pred: torch.Tensor, target: torch.Tensor, how: str = "per_image") -> float:
    """Dice against targets that may hold ``IGNORE`` pixels (left out): the mean over the
    images that hold any other pixel, or one Dice pooled over all their pixels."""
    valid = target != IGNORE
    scored = valid.flatten(1).any(1)  # an all-ignore image has nothing to score
    return val_scorer(how)((pred & valid)[scored], ((target == 1) & valid)[scored])


def score_floor(targets: torch.Tensor, how: str) -> float:
    """What an all-empty prediction scores, plus a tenth of the way to 1: patience starts
    once a network is past it (per image, empty predictions already score the share of
    empty val targets). An unknown ``how`` fails here, before any training."""
    val_scorer(how)
    flat = targets.flatten(1)
    scored = (flat != IGNORE).any(1)
    empty = float((flat[scored] == 1).any(1).logical_not().float().mean())
    trivial = empty if how == "per_image" else 0.0
    return trivial + 0.1 * (1 - trivial)


def train_segmenter(
    data_dir: str | Path,
    out_dir: str | Path,
    settings: SegmenterSettings,
    masks_dir: str | Path | None = None,
    classifier_dir: str | Path | None = None,
) -> dict:
    data_dir, out = Path(data_dir), Path(out_dir)
    masks_dir = Path(masks_dir) if masks_dir else None
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    store = ShardStore(data_dir)
    images, targets, usable = _training_data(store, masks_dir)
    split = np.array([s["split"] for s in store.samples])
    drawn = None
    if settings.mask_fraction < 1 or settings.mask_count:
        targets, usable, drawn = _apply_draw(
            store, targets, usable, split, settings, pseudo=masks_dir is not None
        )
    if settings.mask_repeat < 1:
        raise XaisegError(f"segmenter.mask_repeat: at least 1, got {settings.mask_repeat}")
    if settings.mask_repeat > 1 and (masks_dir is None or drawn is None):
        raise XaisegError(
            "segmenter.mask_repeat repeats the ground truth that mask_count or mask_fraction "
            "mixes into pseudo-masks: set one of them and pass the masks"
        )
    pick = {
        name: torch.from_numpy(np.flatnonzero((split == name) & usable.numpy()))
        for name in ("train", "val")
    }
    if settings.mask_repeat > 1:  # each epoch sees the drawn ground truth R times
        again = np.repeat(np.flatnonzero(drawn), settings.mask_repeat - 1)
        pick["train"] = torch.cat([pick["train"], torch.from_numpy(again)])
    if len(pick["train"]) == 0 or len(pick["val"]) == 0:
        raise XaisegError(f"{data_dir}: no usable masks in the train or val split")
    spec = NetworkSpec(
        kind="segmenter",
        network=settings.network,
        in_channels=store.index["channels"],
        classes=tuple(store.index["classes"]),
        spatial_dims=len(store.index["image_size"]),
        options=settings.network_options,
    )
    model = build_network(spec)
    init_inputs = initialise(model, settings.init_weights, out)
    start = _start_state(model, settings, masks_dir)
    model.to(device)
    criterion = MaskedDiceCELoss()
    train = {"image": images[pick["train"]], "mask": targets[pick["train"]].float()}
    loader = training_batches(
        train,
        settings,
        device,
        spatial_keys=["image", "mask"],
        mask_keys=["mask"],
    )

    def loss_fn(net: nn.Module, batch: dict) -> torch.Tensor:
        return criterion(net(batch["image"]), batch["mask"].round())

    def val_dice(net: nn.Module) -> float:
        prob = predict_masks(
            net, images[pick["val"]], device, settings.precision,
            batch_size=settings.predict_batch_size,
        )  # fmt: skip
        return masked_dice(prob >= 0.5, targets[pick["val"]], settings.val_dice)

    floor = score_floor(targets[pick["val"]], settings.val_dice)
    inputs = [data_dir, masks_dir] if masks_dir else [data_dir]
    if settings.gate_threshold is not None:
        inputs.append(Path(classifier_dir or "") / "predictions.csv")
    inputs = [*inputs, *init_inputs]
    stamp = fingerprint(settings, "xaiseg.train.segmenter", *inputs)
    history = fit(
        model,
        loader,
        loss_fn,
        val_dice,
        settings,
        out,
        stamp,
        f"segmenter {out.name}",
        device,
        floor=floor,
    )
    if not distributed.is_main():  # torchrun's other processes: the first one writes
        return {}
    share = 0.0
    if start is not None:
        tuned_on = int(_positive(targets[pick["train"].unique()]).sum())
        share = settings.start_masks / (settings.start_masks + tuned_on)
        average_with_start(model, start, share)
    gate, keep = settings.gate_threshold, None
    if gate is not None:  # the classifier's probabilities, read once for either gate
        found = classifier_probabilities(store, classifier_dir)
        if gate == "val_fpr":
            gate = val_fpr_gate(model, images, store, spec, found, device, settings)
        keep = found >= read_gate(gate, classifier_dir)
    write_predictions(model, store, out / "predictions", device, settings, keep)
    save_network(model, spec, out)
    summary = {
        "best_epoch": history["best_epoch"],
        "best_val_dice": history["best_score"],
        "history": history["history"],
        "trained_on": "ground_truth" if masks_dir is None else masks_dir.name,
        "n_train": len(pick["train"].unique()),
        "n_ground_truth": int(drawn.sum()) if masks_dir and drawn is not None else None,
        "mask_fraction": settings.mask_fraction,
        "mask_count": settings.mask_count,
        "n_val": len(pick["val"]),
        "gated_empty": int((~keep).sum()) if keep is not None else 0,
        "gate_threshold": None if gate is None else read_gate(gate, classifier_dir),
        "start_share": share,
    }
    write_json(out / "metrics.json", summary)
    write_provenance(
        out,
        stage="segmenter",
        params=asdict(settings),
        inputs=inputs,
        seed=settings.seed,
        device=describe(device),
    )
    return summary


def _start_state(
    model: nn.Module, settings: SegmenterSettings, masks_dir: Path | None
) -> dict[str, torch.Tensor] | None:
    """A copy of the started network's tensors when the kept one shares them."""
    if not settings.start_masks:
        return None
    if settings.start_masks < 0:  # the workflow checks its config; a direct call lands here
        raise XaisegError(f"segmenter.start_masks: at least 0, got {settings.start_masks}")
    if not settings.init_weights:
        raise XaisegError("segmenter.start_masks averages with init_weights: none is set")
    if masks_dir is not None:
        raise XaisegError(
            "segmenter.start_masks weighs the start against ground-truth masks: this "
            f"U-Net trains on pseudo-masks ({masks_dir})"
        )
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def val_fpr_gate(
    model: nn.Module,
    images: torch.Tensor,
    store: ShardStore,
    spec: NetworkSpec,
    found: np.ndarray,
    device: torch.device,
    settings: SegmenterSettings,
) -> float:
    """The gate for "val_fpr", from labels alone: the lowest cut of the classifier's
    probabilities ``found`` (one per image) under which the val images without the
    finding keep any foreground at a rate of at most ``gate_fpr``, read as its upper
    bound at ``gate_confidence``."""
    negative = [
        i
        for i, s in enumerate(store.samples)
        if s["split"] == "val" and s["label_index"] != spec.target_class
    ]
    if not negative:
        raise XaisegError(
            f"segmenter.gate_threshold val_fpr: the val split of {store.folder} holds no image "
            "without the finding to measure false positives on"
        )
    probability = predict_masks(
        model, images[negative], device, settings.precision,
        batch_size=settings.predict_batch_size,
    )  # fmt: skip
    fires = (probability >= 0.5).flatten(1).any(1).numpy()
    return false_positive_gate(found[negative], fires, settings.gate_fpr, settings.gate_confidence)


def classifier_probabilities(store: ShardStore, classifier_dir: str | Path | None) -> np.ndarray:
    """The classifier's probability of the finding for every image of ``store``."""
    if classifier_dir is None:
        raise XaisegError("segmenter.gate_threshold is set: pass the classifier folder")
    return read_probabilities(Path(classifier_dir) / "predictions.csv", store.sample_ids)


def write_predictions(
    model: nn.Module,
    store: ShardStore,
    folder: Path,
    device,
    settings: SegmenterSettings,
    keep: np.ndarray | None = None,
) -> None:
    """Probabilities and masks for every image, streamed shard by shard. Masks of images
    not in ``keep`` are empty; their probabilities stay the network's own."""
    writer = ShardWriter(folder, store.index["shard_size"])
    position = 0
    for shard in store.iter_shards():
        batch_size = settings.predict_batch_size
        for p in predict_masks(
            model, shard["image"], device, settings.precision, batch_size=batch_size
        ):
            mask = (p >= 0.5).to(torch.uint8)
            if keep is not None and not keep[position]:
                mask.zero_()
            writer.add({"probability": p.half().numpy(), "mask": mask.numpy()})
            position += 1
    writer.close({"samples": [{"sample_id": s} for s in store.sample_ids]})
