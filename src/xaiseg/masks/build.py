"""The pseudo-mask stage: normalise maps, threshold, clean, gate by the classifier."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.masks import RULES
from xaiseg.masks.postprocess import clean_mask
from xaiseg.provenance import write_provenance
from xaiseg.saliency.compute import load_maps
from xaiseg.saliency.normalize import normalize_maps


@dataclass(frozen=True)
class MaskSettings:
    rule: str = "otsu"
    rule_options: dict[str, Any] = field(default_factory=dict)
    smooth_sigma: float = 0.0
    min_size: int = 4
    fill_holes: bool = True
    # Classifier probability below which the mask is empty; "val" takes the threshold the
    # classifier stage chose on the validation split (metrics.json beside predictions).
    gate_threshold: float | str = 0.5


def build_masks(
    data_dir: str | Path,
    saliency_dir: str | Path,
    predictions_csv: str | Path,
    out_dir: str | Path,
    settings: MaskSettings,
) -> dict:
    store = ShardStore(data_dir)
    images = store.load(["image"])["image"].numpy()
    maps = normalize_maps(load_maps(saliency_dir), settings.smooth_sigma).numpy()
    probability = _probabilities(predictions_csv, store)
    rule = RULES[settings.rule](**settings.rule_options)
    gate = gate_value(settings.gate_threshold, Path(predictions_csv))
    writer = ShardWriter(out_dir, store.index["shard_size"])
    gated = 0
    for saliency, image, prob in zip(maps, images, probability, strict=True):
        mask = np.zeros(saliency.shape[1:], bool)
        if prob >= gate:
            mask = clean_mask(rule(saliency[0], image), settings.min_size, settings.fill_holes)
        else:
            gated += 1
        writer.add({"mask": mask[np.newaxis].astype(np.uint8)})
    writer.close(
        {"rule": settings.rule, "samples": [{"sample_id": s["sample_id"]} for s in store.samples]}
    )
    counts = {"images": len(maps), "gated_empty": gated, "gate_threshold": gate}
    write_provenance(
        out_dir,
        stage="masks",
        params=asdict(settings),
        inputs=[Path(data_dir) / "index.json", saliency_dir, predictions_csv],
        extra={"counts": counts},
    )
    return counts


def gate_value(setting: float | str, predictions_csv: Path) -> float:
    if setting != "val":
        return float(setting)
    metrics = json.loads(predictions_csv.with_name("metrics.json").read_text())
    return float(metrics["val_threshold"])


def _probabilities(predictions_csv: str | Path, store: ShardStore) -> np.ndarray:
    frame = pd.read_csv(predictions_csv).set_index("sample_id")
    ids = [s["sample_id"] for s in store.samples]
    missing = sorted(set(ids) - set(frame.index))
    if missing:
        raise ValueError(f"{predictions_csv}: no prediction for {missing[:5]}")
    return frame.loc[ids, "probability"].to_numpy()


def load_masks(folder: str | Path) -> torch.Tensor:
    return ShardStore(folder).load(["mask"])["mask"]
