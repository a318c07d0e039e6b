"""Train an image-level classifier; select by validation AUC; predict every image."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from xaiseg.data.shards import ShardStore
from xaiseg.data.splits import SPLITS
from xaiseg.devices import autocast, batches, describe, resolve_device
from xaiseg.errors import XaisegError
from xaiseg.metrics import classification_metrics, grouped_bootstrap_auc, youden_threshold
from xaiseg.models import NetworkSpec, build_network, load_network, save_network
from xaiseg.models.ensemble import ENSEMBLE, Ensemble
from xaiseg.models.init_weights import initialise
from xaiseg.provenance import (
    atomic_path,
    json_text,
    seed_everything,
    write_json,
    write_provenance,
    write_text,
)
from xaiseg.settings import ClassifierSettings
from xaiseg.train import distributed
from xaiseg.train.data import training_batches
from xaiseg.train.fingerprint import fingerprint
from xaiseg.train.loop import fit


def classifier_spec(store: ShardStore, settings: ClassifierSettings) -> NetworkSpec:
    index = store.index
    return NetworkSpec(
        kind="classifier",
        network=settings.network,
        in_channels=index["channels"],
        classes=tuple(index["classes"]),
        spatial_dims=len(index["image_size"]),
        options=settings.network_options,
    )


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    device: torch.device,
    precision: str = "fp32",
    *,
    batch_size: int,
) -> torch.Tensor:
    """Softmax probabilities (N, n_classes), on the CPU, ``batch_size`` at a time."""
    model.eval()
    out = []
    for batch in batches(images, batch_size):
        with autocast(device, precision):
            out.append(model(batch.to(device)).float().softmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, 2)


# What a classifier folder holds; a chosen candidate's are copied up into the run's.
CLASSIFIER_FILES = ("model.safetensors", "model.json", "predictions.csv")


def train_classifier(
    data_dir: str | Path,
    out_dir: str | Path,
    settings: ClassifierSettings,
    *,
    candidates_trained: bool = False,
) -> dict:
    """Train the classifier, or with ``candidates`` each variant in its own folder
    (``candidates/<k>``, resumable) and keep the one of best val AUC (ties: the first),
    or with ``ensemble`` all of them as one network. With ``alternatives`` each
    alternative's variants are trained too, and the alternative whose kept classifier
    has the best val AUC is the run's.

    ``candidates_trained``: jobs of their own trained the variants side by side (the
    workflow's ``train_classifier_candidate``, one per core); only the choice is made.
    """
    variants = settings.variants()
    if len(variants) == 1:
        if settings.ensemble:
            raise XaisegError("classifier.ensemble: name its members in classifier.candidates")
        if candidates_trained:
            raise XaisegError("candidates_trained: these settings name no classifier.candidates")
        return _train_one(data_dir, out_dir, settings)
    out = Path(out_dir)
    folders = [candidate_folder(out, k) for k in range(len(variants))]
    if candidates_trained:
        trained = [_trained_metrics(f, v) for f, v in zip(folders, variants, strict=True)]
    else:
        trained = [_train_one(data_dir, f, v) for f, v in zip(folders, variants, strict=True)]
    if not distributed.is_main():
        return {}
    scores = [m["val"]["auc"] for m in trained]
    kept, alternatives = _choose_alternative(data_dir, settings, folders, scores)
    if settings.ensemble:
        return _keep_all(data_dir, out, settings, kept, folders, scores, alternatives)
    chosen = max(kept, key=lambda k: (scores[k], -k))
    for name in CLASSIFIER_FILES:
        with atomic_path(out / name) as tmp:
            shutil.copyfile(folders[chosen] / name, tmp)
    metrics = {
        **trained[chosen],
        "chosen_variant": chosen,  # 0: the settings as written; see "variants"
        "variants": [
            {"changes": c, "val_auc": scores[k], "best_epoch": trained[k]["best_epoch"]}
            for k, c in enumerate(settings.changes())
        ],
        **alternatives,
    }
    aucs = ", ".join(f"{a:.4f}" for a in scores)
    print(f"classifier: variant {chosen} kept (val AUC {aucs})", flush=True)
    write_json(out / "metrics.json", metrics)
    write_provenance(
        out,
        stage="classifier",
        params=asdict(settings),
        inputs=[Path(data_dir), *(folders[chosen] / n for n in CLASSIFIER_FILES)],
        seed=settings.seed,
        device=describe(resolve_device(settings.device)),
    )
    return metrics


def _choose_alternative(
    data_dir: str | Path, settings: ClassifierSettings, folders: list[Path], scores: list[float]
) -> tuple[range, dict]:
    """The variants of the alternative whose classifier (its ensemble, or its best
    variant) has the best val AUC (ties: the first), and what the metrics record."""
    groups = settings.alternative_variants()
    if len(groups) == 1:
        return groups[0], {}
    if settings.ensemble:
        device = resolve_device(settings.device)
        val = ShardStore(data_dir).load_split(["image", "label"], "val")  # once for all
        aucs = [_ensemble_val_auc([folders[k] for k in g], val, device, settings) for g in groups]
    else:
        aucs = [max(scores[k] for k in g) for g in groups]
    chosen = max(range(len(groups)), key=lambda a: (aucs[a], -a))
    print(
        f"classifier: alternative {chosen} kept (val AUC {', '.join(f'{a:.4f}' for a in aucs)})",
        flush=True,
    )
    record = {
        "chosen_alternative": chosen,  # 0: the settings as written
        "alternatives": [
            {"changes": dict(c), "val_auc": auc, "variants": list(g)}
            for c, auc, g in zip(({}, *settings.alternatives), aucs, groups, strict=True)
        ],
    }
    return groups[chosen], record


def _ensemble_val_auc(
    folders: list[Path], val: dict, device: torch.device, settings: ClassifierSettings
) -> float:
    """The val AUC of the mean probability of the networks in ``folders``."""
    loaded = [load_network(f) for f in folders]
    model = Ensemble([m for m, _ in loaded]).to(device)
    return val_auc(model, val, loaded[0][1].target_class, device, settings)


def val_auc(
    model: nn.Module, val: dict, positive: int, device: torch.device, settings: ClassifierSettings
) -> float:
    """The AUC of ``model`` on the val split's labels (0 when it holds one class only)."""
    probs = predict_probabilities(
        model, val["image"], device, settings.precision, batch_size=settings.predict_batch_size
    )[:, positive]
    auc = classification_metrics(probs, val["label"] == positive)["auc"]
    return auc if auc == auc else 0.0  # NaN when val holds one class only


def _keep_all(
    data_dir: str | Path,
    out: Path,
    settings: ClassifierSettings,
    kept: range,
    folders: list[Path],
    scores: list[float],
    alternatives: dict,
) -> dict:
    """The ``kept`` variants as one network, evaluated and predicting as the run's."""
    loaded = [load_network(folders[k]) for k in kept]
    first = loaded[0][1]
    members = [{"network": s.network, "options": s.options} for _, s in loaded]
    spec = replace(first, network=ENSEMBLE, options={"members": members})
    model = Ensemble([m for m, _ in loaded])
    device = resolve_device(settings.device)
    store = ShardStore(data_dir)
    metrics = _evaluate_and_predict(
        model.to(device), store, out, first.target_class, device, settings
    )
    changes = settings.changes()
    metrics["members"] = [{"changes": changes[k], "val_auc": scores[k]} for k in kept]
    metrics.update(alternatives)
    print(
        f"classifier: {len(kept)} variants kept as an ensemble (val AUC "
        f"{metrics['val']['auc']:.4f}; alone {', '.join(f'{scores[k]:.4f}' for k in kept)})",
        flush=True,
    )
    inputs = [Path(data_dir), *(folders[k] / "model.safetensors" for k in kept)]
    return _write_classifier(out, model, spec, metrics, settings, inputs, device)


def candidate_folder(classifier_dir: str | Path, k: int) -> Path:
    """Where variant ``k`` (0: the settings as written) is trained."""
    return Path(classifier_dir) / "candidates" / str(k)


def _trained_metrics(folder: Path, variant: ClassifierSettings) -> dict:
    """A candidate trained by its own job: its metrics, once its provenance shows it
    was trained with these very settings (a stale folder would choose wrongly)."""
    try:
        record = json.loads((folder / "provenance.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        raise XaisegError(f"{folder}: no trained classifier candidate here ({err})") from err
    if record.get("params") != json.loads(json_text(asdict(variant))):
        raise XaisegError(
            f"{folder}: this candidate was trained with other settings than classifier's "
            "candidates and alternatives now give it; train it again (train-classifier "
            f"--out {folder} with its settings)"
        )
    return metrics


def _train_one(data_dir: str | Path, out_dir: str | Path, settings: ClassifierSettings) -> dict:
    data_dir, out = Path(data_dir), Path(out_dir)
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    store = ShardStore(data_dir)
    spec = classifier_spec(store, settings)
    positive = spec.target_class
    model = build_network(spec)
    init_inputs = initialise(model, settings.init_weights, out)
    model.to(device)
    train = store.load_split(["image", "label"], "train")
    val = store.load_split(["image", "label"], "val")
    if len(train["label"]) == 0 or len(val["label"]) == 0:
        raise XaisegError(f"{data_dir}: the train and val splits must both hold samples")
    # Inverse-frequency class weights: positives are a minority in real data.
    counts = torch.bincount(train["label"], minlength=len(spec.classes)).float().clamp(min=1)
    criterion = nn.CrossEntropyLoss(weight=(counts.sum() / (len(counts) * counts)).to(device))
    loader = training_batches(
        train,
        settings,
        device,
        spatial_keys=["image"],
        hide_patches=settings.hide_patches,
    )

    def loss_fn(net: nn.Module, batch: dict) -> torch.Tensor:
        return criterion(net(batch["image"]), batch["label"])

    def score(net: nn.Module) -> float:
        return val_auc(net, val, positive, device, settings)

    stamp = fingerprint(settings, "xaiseg.train.classifier", data_dir, *init_inputs)
    history = fit(model, loader, loss_fn, score, settings, out, stamp, "classifier", device)
    if not distributed.is_main():  # torchrun's other processes: the first one writes
        return {}
    metrics = _evaluate_and_predict(model, store, out, positive, device, settings)
    metrics["best_epoch"], metrics["history"] = history["best_epoch"], history["history"]
    return _write_classifier(out, model, spec, metrics, settings, [data_dir, *init_inputs], device)


def _write_classifier(out, model, spec, metrics, settings, inputs, device) -> dict:
    """The classifier folder's network, metrics (with a warning near chance) and record."""
    warning = chance_warning(metrics)
    if warning:
        metrics["warning"] = warning
        print(f"WARNING: {warning}", flush=True)
    save_network(model, spec, out)
    write_json(out / "metrics.json", metrics)
    write_provenance(
        out,
        stage="classifier",
        params=asdict(settings),
        inputs=inputs,
        seed=settings.seed,
        device=describe(device),
    )
    return metrics


def chance_warning(metrics: dict) -> str:
    """A message when the val AUC is not clearly above chance, else ''."""
    low, high = metrics["val_auc_ci"]
    if low == low and low > 0.5:
        return ""
    return (
        f"the classifier is not clearly better than chance: val AUC 95% interval "
        f"[{low:.3f}, {high:.3f}] (bootstrap over patients) includes 0.5; its maps and "
        "pseudo-masks are unlikely to mean anything"
    )


def _evaluate_and_predict(
    model: nn.Module,
    store: ShardStore,
    out: Path,
    positive: int,
    device,
    settings: ClassifierSettings,
) -> dict:
    probs, labels = [], []
    for shard in store.iter_shards():  # streamed: memory does not grow with the data
        probs.append(
            predict_probabilities(
                model, shard["image"], device, settings.precision,
                batch_size=settings.predict_batch_size,
            )
        )  # fmt: skip
        labels.append(shard["label"])
    prob, label = torch.cat(probs)[:, positive], torch.cat(labels)
    frame = pd.DataFrame(store.samples)[["sample_id", "split", "label"]]
    frame["probability"] = prob.numpy()
    frame["predicted_positive"] = frame["probability"] >= 0.5
    write_text(out / "predictions.csv", frame.to_csv(index=False))
    truth = label == positive
    val_rows = torch.tensor(store.positions("val"), dtype=torch.long)
    groups = np.array([s.get("group", s["sample_id"]) for s in store.samples])
    low, high = grouped_bootstrap_auc(
        prob[val_rows].numpy(), truth[val_rows].numpy(), groups[val_rows.numpy()]
    )
    # A threshold chosen on validation data: 0.5 is miscalibrated on small, imbalanced sets.
    metrics: dict = {
        "val_threshold": youden_threshold(prob[val_rows], truth[val_rows]),
        "val_auc_ci": [low, high],  # 95%, bootstrap over groups (patients)
    }
    for split in SPLITS:
        rows = torch.tensor(store.positions(split), dtype=torch.long)
        if len(rows):
            metrics[split] = classification_metrics(prob[rows], truth[rows])
            metrics[f"{split}_at_val_threshold"] = classification_metrics(
                prob[rows], truth[rows], metrics["val_threshold"]
            )
    return metrics
