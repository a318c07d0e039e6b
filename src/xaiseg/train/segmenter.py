"""Train a MONAI U-Net on pseudo-masks (or on ground truth, the upper bound).

With pseudo-masks, model selection uses the pseudo-masks of the validation split:
ground truth is never looked at, or the "weak" result would not be weak.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.losses import DiceCELoss
from torch import nn
from torch.utils.data import DataLoader

from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.evaluate.metrics import mean_dice
from xaiseg.masks.build import load_masks
from xaiseg.models import build_segmenter
from xaiseg.provenance import seed_everything, write_json, write_provenance
from xaiseg.train.checkpoint import load_model, save_model
from xaiseg.train.classifier import fingerprint
from xaiseg.train.data import augmentation, dict_dataset, plain, seeded_generator
from xaiseg.train.loop import FitSettings, fit


@dataclass(frozen=True)
class SegmenterSettings:
    network: str = "unet"
    network_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 40
    learning_rate: float = 2e-3
    batch_size: int = 16
    patience: int = 10
    seed: int = 0


def _targets(
    data_dir: Path, masks_dir: Path | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, target masks and the positions that may be trained on."""
    everything = ShardStore(data_dir).load(["image", "mask", "has_mask"])
    if masks_dir is None:
        return everything["image"], everything["mask"], everything["has_mask"].bool()
    return (
        everything["image"],
        load_masks(masks_dir),
        torch.ones(len(everything["image"]), dtype=torch.bool),
    )


@torch.no_grad()
def predict_masks(model: nn.Module, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Foreground probability (N, 1, H, W)."""
    model.eval()
    out = [
        model(images[i : i + batch_size]).softmax(1)[:, 1:]
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def train_segmenter(
    data_dir: str | Path,
    out_dir: str | Path,
    settings: SegmenterSettings,
    masks_dir: str | Path | None = None,
) -> dict:
    data_dir, out = Path(data_dir), Path(out_dir)
    masks_dir = Path(masks_dir) if masks_dir else None
    seed_everything(settings.seed)
    store = ShardStore(data_dir)
    images, targets, usable = _targets(data_dir, masks_dir)
    split = [s["split"] for s in store.samples]
    pick = {
        name: torch.tensor(
            [i for i, s in enumerate(split) if s == name and usable[i]], dtype=torch.long
        )
        for name in ("train", "val")
    }
    if len(pick["train"]) == 0 or len(pick["val"]) == 0:
        raise ValueError(f"{data_dir}: no usable masks in the train or val split")
    model = build_segmenter(
        settings.network, store.index["channels"], 2, **settings.network_options
    )
    criterion = DiceCELoss(to_onehot_y=True, softmax=True)
    transform = augmentation(["image", "mask"], mask_keys=["mask"])
    transform.set_random_state(settings.seed)
    train = {"image": images[pick["train"]], "mask": targets[pick["train"]].float()}
    loader = DataLoader(
        dict_dataset(train, transform),
        batch_size=settings.batch_size,
        shuffle=True,
        generator=seeded_generator(settings.seed),
    )

    def loss_fn(net: nn.Module, batch: dict) -> torch.Tensor:
        return criterion(net(plain(batch["image"])), plain(batch["mask"]).round())

    def val_dice(net: nn.Module) -> float:
        pred = predict_masks(net, images[pick["val"]]) >= 0.5
        return mean_dice(pred, targets[pick["val"]])

    fit_settings = FitSettings.of(settings)
    inputs = [data_dir, masks_dir] if masks_dir else [data_dir]
    history = fit(
        model,
        loader,
        loss_fn,
        val_dice,
        fit_settings,
        out,
        fingerprint(settings, *inputs),
        f"segmenter {out.name}",
    )
    _write_predictions(model, images, store, out / "predictions")
    spec = {
        "network": settings.network,
        "options": settings.network_options,
        "in_channels": store.index["channels"],
    }
    write_json(out / "model.json", spec)
    save_model(model, out / "model.safetensors")
    summary = {
        "best_epoch": history["best_epoch"],
        "best_val_dice": history["best_score"],
        "history": history["history"],
        "trained_on": "ground_truth" if masks_dir is None else str(masks_dir),
        "n_train": len(pick["train"]),
        "n_val": len(pick["val"]),
    }
    write_json(out / "metrics.json", summary)
    write_provenance(
        out, stage="segmenter", params=asdict(settings), inputs=inputs, seed=settings.seed
    )
    return summary


def _write_predictions(
    model: nn.Module, images: torch.Tensor, store: ShardStore, folder: Path
) -> None:
    prob = predict_masks(model, images)
    writer = ShardWriter(folder, store.index["shard_size"])
    for p in prob:
        writer.add({"probability": p.half().numpy(), "mask": (p >= 0.5).to(torch.uint8).numpy()})
    writer.close({"samples": [{"sample_id": s["sample_id"]} for s in store.samples]})


def load_segmenter(folder: str | Path) -> nn.Module:
    folder = Path(folder)
    spec = json.loads((folder / "model.json").read_text())
    model = build_segmenter(spec["network"], spec["in_channels"], 2, **spec["options"])
    return load_model(model, folder / "model.safetensors").eval()
