"""The saliency stage: maps for every image, batched, cached as float16 shards.

float16 cannot hold IG's tiny values faithfully, so each map is stored divided by its
largest magnitude, with that factor in ``scale``: raw map = ``map * scale``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.provenance import seed_everything, write_provenance
from xaiseg.saliency import METHODS
from xaiseg.train.classifier import load_classifier


def compute_saliency(
    data_dir: str | Path,
    classifier_dir: str | Path,
    out_dir: str | Path,
    method: str,
    target_layer: str | None,
    batch_size: int = 32,
    options: dict | None = None,
    seed: int = 0,
) -> None:
    seed_everything(seed)
    store = ShardStore(data_dir)
    model, spec = load_classifier(classifier_dir)
    target = len(spec["classes"]) - 1
    explainer = METHODS[method](model, target_layer, **(options or {}))
    writer = ShardWriter(out_dir, store.index["shard_size"])
    with tqdm(total=len(store.samples), desc=f"saliency {method}", mininterval=5) as bar:
        for shard in store.iter_shards():
            for start in range(0, len(shard["image"]), batch_size):
                maps = explainer(shard["image"][start : start + batch_size], target)
                for raw in maps:
                    writer.add(_pack(raw))
                bar.update(len(maps))
    writer.close(
        {
            "method": method,
            "target_layer": target_layer,
            "target_class": spec["classes"][target],
            "samples": [{"sample_id": s["sample_id"]} for s in store.samples],
        }
    )
    write_provenance(
        out_dir,
        stage="saliency",
        params={
            "method": method,
            "target_layer": target_layer,
            "batch_size": batch_size,
            "options": options or {},
        },
        inputs=[Path(data_dir) / "index.json", Path(classifier_dir) / "model.safetensors"],
        seed=seed,
    )


def _pack(raw: torch.Tensor) -> dict[str, np.ndarray]:
    scale = float(raw.abs().max())
    scale = scale if scale > 0 else 1.0
    return {"map": (raw / scale).half().numpy(), "scale": np.float32(scale)}


def load_maps(folder: str | Path) -> torch.Tensor:
    """Raw signed maps (N, 1, H, W) as float32."""
    tensors = ShardStore(folder).load(["map", "scale"])
    return tensors["map"].float() * tensors["scale"].view(-1, 1, 1, 1)
