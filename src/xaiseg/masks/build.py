"""The pseudo-mask stage: stream the images and every map of a recipe, shard by shard,
apply the recipe, and empty the mask wherever the classifier finds nothing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from xaiseg.data.artifacts import raw_maps, read_probabilities, read_val_threshold
from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.masks.normalize import normalize_maps
from xaiseg.masks.recipe import Recipe
from xaiseg.provenance import write_provenance
from xaiseg.settings import RecipeJob


def build_masks(
    data_dir: str | Path,
    saliency_dirs: dict[str, Path],
    classifier_dir: str | Path,
    out_dir: str | Path,
    job: RecipeJob,
) -> dict:
    recipe_settings = job.recipe
    recipe = Recipe(recipe_settings)
    store = ShardStore(data_dir)
    classifier_dir = Path(classifier_dir)
    maps_stores = [ShardStore(saliency_dirs[m]) for m in recipe_settings.methods]
    probability = read_probabilities(classifier_dir / "predictions.csv", store.sample_ids)
    gate = gate_value(job.gate_threshold, classifier_dir / "metrics.json")
    writer = ShardWriter(out_dir, store.index["shard_size"])
    counts = {"images": 0, "gated_empty": 0, "empty": 0, "ignore_pixels": 0}
    for _ids, (data, *map_shards) in store.iter_joined(*maps_stores):
        images = data["image"].numpy()
        normalised = np.stack(
            [
                normalize_maps(raw_maps(s), recipe_settings.smooth_sigma).numpy()[:, 0]
                for s in map_shards
            ],
            axis=1,
        )  # (N, M, *spatial)
        for i, image in enumerate(images):
            position = counts["images"]
            counts["images"] += 1
            if probability[position] < gate:
                mask = np.zeros(image.shape[1:], np.uint8)
                counts["gated_empty"] += 1
            else:
                mask = recipe(normalised[i], image)
            counts["empty"] += int(not (mask == 1).any())
            counts["ignore_pixels"] += int((mask == 2).sum())
            writer.add({"mask": mask[np.newaxis]})
    writer.close(
        {"recipe": recipe_settings.name, "samples": [{"sample_id": s} for s in store.sample_ids]}
    )
    counts["gate_threshold"] = gate
    write_provenance(
        out_dir,
        stage="masks",
        params=asdict(job),
        inputs=[
            Path(data_dir) / "index.json",
            *saliency_dirs.values(),
            classifier_dir / "predictions.csv",
        ],
        extra={"counts": counts},
    )
    return counts


def gate_value(setting: float | str, classifier_metrics: Path) -> float:
    """A probability, or "val": the classifier stage's threshold chosen on validation."""
    return read_val_threshold(classifier_metrics) if setting == "val" else float(setting)
