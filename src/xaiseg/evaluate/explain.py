"""Why did the segmenter draw that: its explanations beside its prediction.

One row per test image with a finding (a seeded draw); columns: the image with the
ground truth, the segmenter's prediction, and each map that explains it (Seg-Grad-CAM,
Seg-HiRes-Grad-CAM, ...), normalised to its own peak. Beside it, ``saliency_metrics.csv``:
how well each map localises the lesion (``evaluate/localisation.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xaiseg.data.artifacts import raw_maps
from xaiseg.data.shards import ShardStore, check_same_samples
from xaiseg.evaluate.figures import overlay_grid, to_2d
from xaiseg.evaluate.picks import lesion_images
from xaiseg.evaluate.saliency_metrics import saliency_metrics_table
from xaiseg.masks.normalize import normalize_maps
from xaiseg.provenance import write_provenance, write_text


def explanation_figure(
    data_dir: str | Path,
    predictions_dir: str | Path,
    map_dirs: Mapping[str, Path],
    out_dir: str | Path,
    n_images: int = 6,
    seed: int = 0,
) -> list[str]:
    """Draw ``out_dir/figure.png`` with provenance beside it; returns the sample_ids."""
    store, predictions = ShardStore(data_dir), ShardStore(predictions_dir)
    maps = {name: ShardStore(folder) for name, folder in map_dirs.items()}
    for other in (predictions, *maps.values()):
        check_same_samples(store, other)
    rows = lesion_images(store, n_images, seed)
    tensors = store.take(["image", "mask"], rows)
    truth = tensors["mask"][:, 0].numpy() == 1
    images, picks = to_2d(tensors["image"][:, 0].numpy(), truth)
    predicted = predictions.take(["mask"], rows)["mask"][:, 0].numpy() == 1
    columns = {"prediction": to_2d(predicted, truth, picks)[0]}
    for name, folder in maps.items():
        values = normalize_maps(raw_maps(folder.take(["map", "scale"], rows))).numpy()[:, 0]
        columns[name] = to_2d(values, truth, picks)[0]
    ids = [store.sample_ids[r] for r in rows]
    overlay_grid(Path(out_dir) / "figure.png", images, to_2d(truth, truth, picks)[0], columns, ids)
    localisation = saliency_metrics_table(data_dir, map_dirs)
    write_text(Path(out_dir) / "saliency_metrics.csv", localisation.to_csv(index=False))
    indexes = [Path(f) / "index.json" for f in (predictions_dir, *map_dirs.values())]
    write_provenance(
        out_dir,
        stage="explain",
        params={"maps": sorted(map_dirs), "n_images": n_images, "sample_ids": ids},
        inputs=indexes,
        seed=seed,
    )
    return ids
