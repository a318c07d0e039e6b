"""Per map (method and layer), per split: how well it localises the lesion, averaged
over images whose ground truth holds one. Streamed shard by shard."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.artifacts import raw_maps
from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.localisation import PER_IMAGE, THRESHOLDS, localisation_scores


def per_image_localisation(
    data_dir: str | Path, map_dirs: Mapping[str, Path], group: tuple[int, int] | None = None
) -> pd.DataFrame:
    """Map by map, the localisation scores of every image whose ground truth holds a
    lesion (of shard group ``(number, shards_per_group)`` alone when given)."""
    store = ShardStore(data_dir)
    store = store.group(*group) if group else store
    meta = {s["sample_id"]: s for s in store.samples}
    rows = []
    for name, folder in map_dirs.items():
        maps_store = ShardStore(folder)
        maps_store = maps_store.group(*group) if group else maps_store
        for ids, (data, maps) in store.iter_joined(maps_store):
            raw = raw_maps(maps).numpy()[:, 0]
            truth = data["mask"].numpy()[:, 0] == 1
            for i, sample_id in enumerate(ids):
                if data["has_mask"][i] and truth[i].any():
                    sample = meta[sample_id]
                    rows.append(
                        {"map": name, "sample_id": sample_id, "split": sample["split"],
                         "group": sample["group"], **localisation_scores(raw[i], truth[i])}
                    )  # fmt: skip
    return pd.DataFrame(rows)


def saliency_metrics_table(data_dir: str | Path, map_dirs: Mapping[str, Path]) -> pd.DataFrame:
    return summarise_localisation(per_image_localisation(data_dir, map_dirs), map_dirs)


def summarise_localisation(per_image: pd.DataFrame, map_dirs: Mapping[str, Path]) -> pd.DataFrame:
    """One row per map and split: the mean of every metric, and the Dice at the single
    threshold that is best for that map on that split (an upper bound for a fixed cut)."""
    columns = ["map", "method", "target_layer", "split", "n_images", *PER_IMAGE]
    columns += ["dice_best", "best_threshold"]
    if per_image.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (name, split), group in per_image.groupby(["map", "split"], sort=True):
        index = json.loads((Path(map_dirs[name]) / "index.json").read_text())
        dice_by_level = [group[f"dice@{t:.2f}"].mean() for t in THRESHOLDS]
        best = int(np.argmax(dice_by_level))
        rows.append(
            {"map": name, "method": index.get("method"), "target_layer": index.get("target_layer"),
             "split": split, "n_images": len(group), **group[list(PER_IMAGE)].mean().to_dict(),
             "dice_best": dice_by_level[best], "best_threshold": float(THRESHOLDS[best])}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
