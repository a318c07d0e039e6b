"""The pseudo-mask stage: stream the images and every map of a recipe, shard by shard,
apply the recipe, and keep masks only on images with the finding.

Which images hold the finding: in the train and val splits, their image labels (the
supervision this product learns from); elsewhere, the classifier above the gate. An
image with the finding whose recipe finds nothing becomes all ``IGNORE``: calling it
background would teach the segmenter to miss what the recipe missed; so does a labelled
image whose mask a recipe's ``select`` finds too faint in its own map (``select.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from xaiseg.data.artifacts import IGNORE, raw_maps, read_gate, read_probabilities
from xaiseg.data.shards import ShardStore, ShardWriter
from xaiseg.errors import XaisegError
from xaiseg.masks.normalize import normalize_maps
from xaiseg.masks.recipe import Recipe
from xaiseg.masks.select import mask_score, selection_cut
from xaiseg.provenance import write_provenance
from xaiseg.settings import RecipeJob

LABELLED_SPLITS = ("train", "val")
REFERENCE_PIXELS = 2_000_000  # at most this many healthy map values calibrate a rule


def build_masks(
    data_dir: str | Path,
    saliency_dirs: dict[str, Path],
    classifier_dir: str | Path,
    out_dir: str | Path,
    job: RecipeJob,
    group: tuple[int, int] | None = None,
) -> dict:
    """Masks of every image, or of shard group ``(number, shards_per_group)`` alone; a
    rule that learns a threshold learns it from every train image either way."""
    recipe = Recipe(job.recipe)
    store = ShardStore(data_dir)
    maps_stores = [ShardStore(saliency_dirs[m]) for m in job.recipe.map_names]
    has_finding, gate = _has_finding(store, Path(classifier_dir), job.gate_threshold)
    if recipe.rule.needs_reference:
        finding = len(store.index["classes"]) - 1
        recipe.fit(_healthy_values(store, maps_stores, job, recipe, finding))
    extra = {"reference_threshold": recipe.rule.threshold} if recipe.rule.needs_reference else {}
    left_out = [False] * len(store.samples)
    if job.recipe.select is not None:
        # Scored over every labelled image, whichever shard group is written: the cut
        # is the whole train split's.
        extra["selection_cut"], left_out = _selection(store, maps_stores, job, recipe, has_finding)
    if group:
        maps_stores = [m.group(*group) for m in maps_stores]
    store, (has_finding, left_out) = _grouped(store, group, has_finding, left_out)

    def masks() -> Iterator[np.ndarray]:
        position = 0
        for images, maps in _recipe_inputs(store, maps_stores, job):
            for image, image_maps in zip(images, maps, strict=True):
                # Gated images are emptied anyway: the recipe runs only where it counts.
                found = has_finding[position]
                yield recipe(image_maps, image) if found else np.zeros(image.shape[1:], np.uint8)
                position += 1

    sources = list(saliency_dirs.values())
    return _write_masks(
        store, masks(), has_finding, out_dir, job, sources=sources,
        classifier_dir=classifier_dir, group=group, gate=gate, extra=extra, left_out=left_out,
    )  # fmt: skip


def build_round_masks(
    data_dir: str | Path,
    predictions_dir: str | Path,
    classifier_dir: str | Path,
    out_dir: str | Path,
    job: RecipeJob,
    group: tuple[int, int] | None = None,
) -> dict:
    """Self-training: the masks of one round are the previous round's segmenter's own
    predictions, gated as every recipe's masks are (labels on train and val, the
    classifier on test), so a round teaches what the last network found, on the images
    that hold the finding only."""
    store = ShardStore(data_dir)
    predictions = ShardStore(predictions_dir)
    if predictions.sample_ids != store.sample_ids:
        raise XaisegError(f"{predictions_dir}: its images are not those of {data_dir}")
    has_finding, gate = _has_finding(store, Path(classifier_dir), job.gate_threshold)
    if group:
        predictions = predictions.group(*group)
    store, (has_finding,) = _grouped(store, group, has_finding)

    def masks() -> Iterator[np.ndarray]:
        for shard in predictions.iter_shards():
            for mask in shard["mask"].numpy():
                yield mask[0].astype(np.uint8)

    sources = [Path(predictions_dir)]
    return _write_masks(
        store, masks(), has_finding, out_dir, job,
        sources=sources, classifier_dir=classifier_dir, group=group, gate=gate,
    )  # fmt: skip


def _has_finding(
    store: ShardStore, classifier_dir: Path, gate_threshold: float | str
) -> tuple[list[bool], float]:
    """Per image, whether its mask may hold the finding: its label on the labelled
    splits, the classifier at the gate on the others."""
    probability = read_probabilities(classifier_dir / "predictions.csv", store.sample_ids)
    gate = read_gate(gate_threshold, classifier_dir)
    finding = len(store.index["classes"]) - 1
    has_finding = [
        s["label_index"] == finding if s["split"] in LABELLED_SPLITS else probability[i] >= gate
        for i, s in enumerate(store.samples)
    ]
    return has_finding, gate


def _grouped(
    store: ShardStore, group: tuple[int, int] | None, *flags: list[bool]
) -> tuple[ShardStore, list[list[bool]]]:
    """The store of shard group ``group`` and each per-image list of ``flags`` cut to it."""
    if not group:
        return store, list(flags)
    store = store.group(*group)
    first = store.first_shard * store.index["shard_size"]
    return store, [f[first : first + len(store.samples)] for f in flags]


def _write_masks(
    store: ShardStore,
    masks: Iterable[np.ndarray],
    has_finding: list[bool],
    out_dir: str | Path,
    job: RecipeJob,
    *,
    sources: list[Path],
    classifier_dir: str | Path,
    group: tuple[int, int] | None,
    gate: float,
    extra: dict | None = None,
    left_out: list[bool] | None = None,
) -> dict:
    """Each image's mask where it may hold the finding, empty where not; written with
    its counts and provenance (``sources``: the maps or predictions it came from).
    ``left_out``: per image, whether a recipe's ``select`` leaves its mask out."""
    writer = ShardWriter(out_dir, store.index["shard_size"], store.first_shard)
    counts = {
        "images": 0, "gated_empty": 0, "unfound": 0, "left_out": 0, "empty": 0,
        "ignore_pixels": 0,
    }  # fmt: skip
    for position, mask in enumerate(masks):
        counts["images"] += 1
        if has_finding[position]:
            if left_out and left_out[position]:
                mask = np.full_like(mask, IGNORE)  # found, but too faintly to teach
                counts["left_out"] += 1
            elif not (mask == 1).any():
                # The finding is there but the recipe did not find it: no pixel of
                # this image is known background, so none may teach the segmenter.
                mask = np.full_like(mask, IGNORE)
                counts["unfound"] += 1
        else:
            mask = np.zeros_like(mask)
            counts["gated_empty"] += 1
        counts["empty"] += int(not (mask == 1).any())
        counts["ignore_pixels"] += int((mask == IGNORE).sum())
        writer.add({"mask": mask[np.newaxis]})
    writer.close(
        {"recipe": job.recipe.name, "samples": [{"sample_id": s} for s in store.sample_ids]}
    )
    counts = {**counts, "gate_threshold": gate, **(extra or {})}
    write_provenance(
        out_dir,
        stage="masks",
        params=asdict(job),
        inputs=[
            store.folder / "index.json",
            *sources,
            Path(classifier_dir) / "predictions.csv",
        ],
        extra={"counts": counts, "group": group},
    )
    return counts


def _recipe_inputs(
    store: ShardStore, maps_stores: list[ShardStore], job: RecipeJob
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per shard: images (N, C, *spatial) and the recipe's normalised maps (N, M, *spatial),
    one per term of its combine: a map, or the mean of a group's normalised maps.
    ``maps_stores`` are the stores of ``recipe.map_names``, in that order."""
    recipe = job.recipe
    position = {name: i for i, name in enumerate(recipe.map_names)}
    for _ids, (data, *map_shards) in store.iter_joined(*maps_stores):
        maps = [
            normalize_maps(raw_maps(s), recipe.smooth_sigma, peak=recipe.normalize == "peak")
            for s in map_shards
        ]
        terms = [
            torch.stack([maps[position[name]] for name in group]).mean(0)
            for group in recipe.map_groups
        ]
        yield data["image"].numpy(), np.stack([t.numpy()[:, 0] for t in terms], axis=1)


def _selection(
    store: ShardStore,
    maps_stores: list[ShardStore],
    job: RecipeJob,
    recipe: Recipe,
    has_finding: list[bool],
) -> tuple[float, list[bool]]:
    """The ``select`` cut, from the scores of the train split's images with the finding,
    and per image whether its mask is left out: a labelled image with the finding whose
    mask scores below the cut (an empty mask is left to count as unfound)."""
    select = job.recipe.select
    scores = np.full(len(store.samples), np.nan)
    position = 0
    for images, maps in _recipe_inputs(store, maps_stores, job):
        for image, image_maps in zip(images, maps, strict=True):
            if has_finding[position] and store.samples[position]["split"] in LABELLED_SPLITS:
                mask, combined = recipe.mask_and_map(image_maps, image)
                scores[position] = mask_score(select.score, mask == 1, combined)
            position += 1
    train = np.array([s["split"] == "train" for s in store.samples])
    cut = selection_cut(scores[train & ~np.isnan(scores)], select.keep)
    return cut, ((scores > -np.inf) & (scores < cut)).tolist()


def _healthy_values(
    store: ShardStore, maps_stores: list[ShardStore], job: RecipeJob, recipe: Recipe, finding: int
) -> np.ndarray:
    """Combined map values of the train split's images without the finding, subsampled
    evenly so that memory stays bounded whatever the number of images."""
    healthy = [s["split"] == "train" and s["label_index"] != finding for s in store.samples]
    n_healthy = max(1, sum(healthy))
    values, position = [], 0
    for _images, maps in _recipe_inputs(store, maps_stores, job):
        for image_maps in maps:
            if healthy[position]:
                combined = recipe.combine(image_maps).ravel()
                step = max(1, combined.size * n_healthy // REFERENCE_PIXELS)
                values.append(combined[::step])
            position += 1
    return np.concatenate(values) if values else np.zeros(0)
