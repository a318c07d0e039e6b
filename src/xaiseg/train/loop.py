"""One training loop: epochs, validation score, best checkpoint, resume, early stop.

Resumable: after every epoch the full training state is saved under
``<out>/checkpoint/``; a rerun with the same fingerprint (settings + inputs) picks up
at the next epoch. The final model file is written only when training has finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from xaiseg.train.checkpoint import load_model, load_training_state, save_model, save_training_state

ScoreFn = Callable[[nn.Module], float]
LossFn = Callable[[nn.Module, dict], torch.Tensor]


@dataclass(frozen=True)
class FitSettings:
    epochs: int
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    patience: int = 10
    seed: int = 0

    @classmethod
    def of(cls, stage_settings: object) -> FitSettings:
        """The loop's share of a stage's settings (fields with the same names)."""
        names = [f.name for f in fields(cls)]
        return cls(**{n: getattr(stage_settings, n) for n in names if hasattr(stage_settings, n)})


def fit(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: LossFn,
    score_fn: ScoreFn,
    settings: FitSettings,
    out_dir: Path,
    fingerprint: str,
    desc: str,
) -> dict:
    """Train ``model`` in place; returns the history. Best weights end up in ``model``."""
    ckpt = out_dir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    meta = load_training_state(ckpt, model, optimizer, fingerprint) or {
        "epoch": 0,
        "best_score": float("-inf"),
        "best_epoch": 0,
        "history": [],
    }
    start = meta["epoch"]
    if start:
        print(f"{desc}: resuming after epoch {start} (best {meta['best_score']:.4f})", flush=True)
    for epoch in range(start + 1, settings.epochs + 1):
        if epoch - meta["best_epoch"] > settings.patience and meta["best_epoch"] > 0:
            print(f"{desc}: early stop at epoch {epoch - 1}", flush=True)
            break
        tick = time.perf_counter()
        train_loss = _train_epoch(
            model, loader, loss_fn, optimizer, f"{desc} {epoch}/{settings.epochs}"
        )
        model.eval()
        with torch.no_grad():
            score = float(score_fn(model))
        meta["history"].append(
            {
                "epoch": epoch,
                "loss": train_loss,
                "val_score": score,
                "seconds": time.perf_counter() - tick,
            }
        )
        print(f"{desc} epoch {epoch}: loss {train_loss:.4f} val {score:.4f}", flush=True)
        if score > meta["best_score"]:
            meta.update(best_score=score, best_epoch=epoch)
            save_model(model, ckpt / "best.safetensors")
        meta["epoch"] = epoch
        save_training_state(ckpt, model, optimizer, {**meta, "fingerprint": fingerprint})
    load_model(model, ckpt / "best.safetensors")
    model.eval()
    return meta


def _train_epoch(model, loader, loss_fn, optimizer, desc: str) -> float:
    model.train()
    total, count = 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=5):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch["image"])
        count += len(batch["image"])
    return total / max(count, 1)
