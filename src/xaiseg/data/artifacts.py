"""Readers of the per-sample artifacts later stages write, always joined by sample_id.

They live beside the shard store, before every stage that reads them, so data flows
one way: a stage never imports the stage that wrote its input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xaiseg.errors import XaisegError

IGNORE = 2  # pseudo-mask value of pixels the segmenter's loss leaves out


def raw_maps(shard: dict[str, torch.Tensor]) -> torch.Tensor:
    """A saliency shard's raw signed maps (N, 1, *spatial) as float32.

    float16 cannot hold Integrated Gradients' tiny values, so maps are stored divided
    by their peak magnitude, kept in ``scale``.
    """
    scale = shard["scale"].float()
    maps = shard["map"].float()
    return maps * scale.view(-1, *([1] * (maps.ndim - 1)))


def peak_magnitudes(raw: torch.Tensor) -> torch.Tensor:
    """Each map's (N, ...) largest magnitude, (N,): 1 for an all-zero map."""
    scale = raw.abs().flatten(1).amax(1)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def peak_scaled(maps: torch.Tensor) -> torch.Tensor:
    """Each map (N, 1, ...) divided by its largest magnitude; an all-zero map stays 0."""
    return maps / peak_magnitudes(maps).view(-1, *[1] * (maps.ndim - 1))


def pack_maps(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps (N, ...) as stored, on their device: float16, each scaled to a largest
    magnitude of 1, and the scales (1 for an all-zero map)."""
    scale = peak_magnitudes(raw)
    return (raw / scale.view(-1, *[1] * (raw.ndim - 1))).half(), scale


def map_rows(maps: torch.Tensor, scales: torch.Tensor) -> list[dict[str, np.ndarray]]:
    """A packed batch as the rows of a map shard (copied to the CPU here)."""
    maps_np, scales_np = maps.cpu().numpy(), scales.float().cpu().numpy()
    return [{"map": m, "scale": np.float32(s)} for m, s in zip(maps_np, scales_np, strict=True)]


def read_probabilities(predictions_csv: str | Path, sample_ids: Sequence[str]) -> np.ndarray:
    """The classifier's positive-class probability for each id, in that order."""
    frame = pd.read_csv(predictions_csv, dtype={"sample_id": str}).set_index("sample_id")
    missing = [s for s in sample_ids if s not in frame.index]
    if missing:
        raise XaisegError(f"{predictions_csv}: no prediction for {missing[:5]}")
    return frame.loc[list(sample_ids), "probability"].to_numpy(dtype=np.float64)


def read_gate(setting: float | str, classifier_dir: str | Path) -> float:
    """A gate probability: the number itself, or for "val" the threshold the classifier
    stage chose on the validation split."""
    if setting == "val":
        return read_val_threshold(Path(classifier_dir) / "metrics.json")
    return float(setting)


def read_val_threshold(classifier_metrics: str | Path) -> float:
    metrics = json.loads(Path(classifier_metrics).read_text())
    if "val_threshold" not in metrics:
        raise XaisegError(f"{classifier_metrics}: no val_threshold (rerun the classifier)")
    return float(metrics["val_threshold"])
