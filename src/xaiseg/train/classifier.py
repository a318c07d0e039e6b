"""Train an image-level classifier; select by validation AUC; predict every image."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.metrics import classification_metrics, youden_threshold
from xaiseg.models import build_classifier
from xaiseg.provenance import hash_inputs, seed_everything, write_json, write_provenance, write_text
from xaiseg.train.checkpoint import load_model, save_model
from xaiseg.train.data import augmentation, dict_dataset, plain, seeded_generator
from xaiseg.train.loop import FitSettings, fit


@dataclass(frozen=True)
class ClassifierSettings:
    network: str = "resnet18"
    network_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 32
    patience: int = 10
    seed: int = 0


def fingerprint(settings: Any, *inputs: Path) -> str:
    """Settings, every input file (folders: each file in them, shards included) and the
    training code: a checkpoint resumes only if all of them match."""
    digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    package = Path(__file__).resolve().parents[1]
    code = sorted((package / "train").glob("*.py")) + sorted((package / "models").glob("*.py"))
    for name, sha in sorted(hash_inputs([*inputs, *code]).items()):
        digest.update(f"{Path(name).name}:{sha}".encode())
    return digest.hexdigest()


def model_spec(data_dir: Path, settings: ClassifierSettings) -> dict[str, Any]:
    index = ShardStore(data_dir).index
    return {
        "network": settings.network,
        "options": settings.network_options,
        "in_channels": index["channels"],
        "classes": index["classes"],
    }


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    return build_classifier(
        spec["network"], spec["in_channels"], len(spec["classes"]), **spec["options"]
    )


def load_classifier(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    folder = Path(folder)
    spec = json.loads((folder / "model.json").read_text())
    model = load_model(build_from_spec(spec), folder / "model.safetensors")
    return model.eval(), spec


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, images: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Softmax probabilities (N, n_classes)."""
    model.eval()
    return torch.cat(
        [model(images[i : i + batch_size]).softmax(1) for i in range(0, len(images), batch_size)]
    )


def train_classifier(
    data_dir: str | Path, out_dir: str | Path, settings: ClassifierSettings
) -> dict:
    data_dir, out = Path(data_dir), Path(out_dir)
    seed_everything(settings.seed)
    spec = model_spec(data_dir, settings)
    positive = len(spec["classes"]) - 1  # the last class is the "finding" class
    model = build_from_spec(spec)
    store = ShardStore(data_dir)
    train = store.load_split(["image", "label"], "train")
    val = store.load_split(["image", "label"], "val")
    if len(train["label"]) == 0 or len(val["label"]) == 0:
        raise ValueError(f"{data_dir}: the train and val splits must both hold samples")
    # Inverse-frequency class weights: positives are a minority in real data.
    counts = torch.bincount(train["label"], minlength=len(spec["classes"])).float().clamp(min=1)
    criterion = nn.CrossEntropyLoss(weight=counts.sum() / (len(counts) * counts))
    transform = augmentation(["image"])
    transform.set_random_state(settings.seed)
    loader = DataLoader(
        dict_dataset({"image": train["image"], "label": train["label"]}, transform),
        batch_size=settings.batch_size,
        shuffle=True,
        generator=seeded_generator(settings.seed),
    )

    def loss_fn(net: nn.Module, batch: dict) -> torch.Tensor:
        return criterion(net(plain(batch["image"])), batch["label"])

    def val_auc(net: nn.Module) -> float:
        probs = predict_probabilities(net, val["image"])[:, positive]
        auc = classification_metrics(probs, val["label"] == positive)["auc"]
        return auc if auc == auc else 0.0  # NaN when val holds one class only

    fit_settings = FitSettings.of(settings)
    history = fit(
        model,
        loader,
        loss_fn,
        val_auc,
        fit_settings,
        out,
        fingerprint(settings, data_dir),
        "classifier",
    )
    metrics = _evaluate_and_predict(model, data_dir, out, positive)
    metrics["best_epoch"], metrics["history"] = history["best_epoch"], history["history"]
    write_json(out / "model.json", spec)
    save_model(model, out / "model.safetensors")
    write_json(out / "metrics.json", metrics)
    write_provenance(
        out, stage="classifier", params=asdict(settings), inputs=[data_dir], seed=settings.seed
    )
    return metrics


def _evaluate_and_predict(model: nn.Module, data_dir: Path, out: Path, positive: int) -> dict:
    store = ShardStore(data_dir)
    everything = store.load(["image", "label"])
    probs = predict_probabilities(model, everything["image"])
    frame = pd.DataFrame(store.samples)[["sample_id", "split", "label"]]
    frame["probability"] = probs[:, positive].numpy()
    frame["predicted_positive"] = frame["probability"] >= 0.5
    write_text(out / "predictions.csv", frame.to_csv(index=False))
    metrics: dict = {}
    truth = everything["label"] == positive
    val_rows = torch.tensor(store.positions("val"), dtype=torch.long)
    # A threshold chosen on validation data: 0.5 is miscalibrated on small, imbalanced sets.
    metrics["val_threshold"] = youden_threshold(probs[val_rows, positive], truth[val_rows])
    for split in ("train", "val", "test"):
        rows = torch.tensor(store.positions(split), dtype=torch.long)
        if len(rows):
            metrics[split] = classification_metrics(probs[rows, positive], truth[rows])
            metrics[f"{split}_at_val_threshold"] = classification_metrics(
                probs[rows, positive], truth[rows], metrics["val_threshold"]
            )
    return metrics
