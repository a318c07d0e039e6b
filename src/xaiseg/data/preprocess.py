"""Decode every sheet row, resample, normalise, split, and write tensor shards: the
whole sheet in one job (``preprocess``), or one shard group's rows of the plan
(``preprocess_group``; ``xaiseg.data.preprocess_join`` gathers the groups).

Decoding runs in a process pool (``threads`` workers) while the main process writes
shards, so reading and writing overlap. Bad files are collected, not fatal one by one:
``on_bad_input="fail"`` reports them all at once, ``"skip"`` quarantines them.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from monai.transforms import Resize
from tqdm import tqdm

from xaiseg.data.plan import (
    KEPT,
    PROBLEMS,
    plan_rows,
    read_plan,
    write_problems,
    write_rows,
)
from xaiseg.data.shards import INDEX, ShardWriter
from xaiseg.data.write import write_data
from xaiseg.errors import InputError, XaisegError
from xaiseg.io import load_image, load_mask
from xaiseg.io.sheet import SheetProblem, path_token, sheet_error
from xaiseg.provenance import write_json, write_provenance
from xaiseg.settings import PreprocessSettings


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[0] == channels:
        return image
    if channels == 1:
        return image.mean(axis=0, keepdims=True)
    if image.shape[0] == 1:
        return np.repeat(image, channels, axis=0)
    raise ValueError(f"cannot turn {image.shape[0]} channels into {channels}")


def scale_percentiles(image: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Per channel, map the [lower, upper] percentiles onto [0, 1] and clip.

    numpy's percentile partitions in O(n); torch.quantile (MONAI's path) sorts, and
    dominated preprocessing time.
    """
    low, high = np.percentile(image.reshape(len(image), -1), [lower, upper], axis=1)
    return scale_between(image, low, high)


def _single_threaded_worker() -> None:
    import torch

    # Each worker is one core's worth of work; torch's own threads would oversubscribe.
    torch.set_num_threads(1)


MIN_SIDE = 8  # pixels; anything smaller is not an image a network can learn from


def prepare_sample(
    row: dict, settings: PreprocessSettings, bounds: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Decode one checked row (absolute ``image_path``/``mask_path``) into fixed-size
    tensors; raises InputError naming the file. ``bounds`` (2, C): the intensities
    mapped onto 0 and 1; None: the image's own percentiles."""
    image = decode_image(row, settings)
    size = (settings.image_size,) * settings.spatial_dims
    mask_out = np.zeros((1, *size), np.uint8)
    if row["mask_path"]:
        mask = load_mask(row["mask_path"], settings.spatial_dims, max_pixels=settings.max_pixels)
        if mask.shape != image.shape[1:] and settings.mask_size_mismatch != "resize":
            raise InputError(
                row["mask_path"],
                f"mask size {mask.shape} differs from image size {image.shape[1:]}",
            )
        mask_out = Resize(size, mode="nearest")(mask[np.newaxis].astype(np.float32))
    return {
        "image": normalise(resample(image, settings), settings, bounds),
        "mask": (np.asarray(mask_out) > 0.5).astype(np.uint8),
    }


def normalise(
    resampled: np.ndarray, settings: PreprocessSettings, bounds: np.ndarray | None = None
) -> np.ndarray:
    """Intensities onto [0, 1]: ``bounds`` (2, C) of the image's group, or (None) the
    image's own percentiles. Training and ``xaiseg predict`` both come through here."""
    # Resampled first: percentiles of the smaller image cost a fraction and barely differ.
    if bounds is None:
        image = scale_percentiles(resampled, *settings.percentiles)
    else:
        image = scale_between(resampled, bounds[0], bounds[1])
    return np.asarray(image, dtype=np.float32)


def decode_image(row: dict, settings: PreprocessSettings) -> np.ndarray:
    """The row's image (C, *spatial) with the configured channels, as stored."""
    frame = int(row["frame"]) if row.get("frame") else None
    window = settings.dicom_window
    window = tuple(window) if isinstance(window, list) else window
    image = load_image(row["image_path"], window, frame, settings.spatial_dims, settings.max_pixels)
    if min(image.shape[1:]) < MIN_SIDE:
        shape = "x".join(str(n) for n in image.shape[1:])
        raise InputError(row["image_path"], f"image is {shape} pixels; need {MIN_SIDE} per side")
    try:
        return match_channels(image, settings.channels)
    except ValueError as err:
        raise InputError(row["image_path"], str(err)) from err


def resample(image: np.ndarray, settings: PreprocessSettings) -> np.ndarray:
    size = (settings.image_size,) * settings.spatial_dims
    return np.asarray(Resize(size, mode="area")(image), dtype=np.float32)


def scale_between(image: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per channel, map ``low`` onto 0 and ``high`` onto 1, and clip."""
    span = np.where(high > low, high - low, 1.0)
    shape = (-1,) + (1,) * (image.ndim - 1)
    return np.clip((image - low.reshape(shape)) / span.reshape(shape), 0.0, 1.0)


GROUP_SAMPLE = 4096  # intensities per image and channel that calibrate its group


def _intensity_sample(args) -> np.ndarray | None:
    """An even subsample (C, <=GROUP_SAMPLE) of one image's intensities; None when the
    image cannot be decoded (the second pass reports it)."""
    row, settings = args
    try:
        return intensity_sample(resample(decode_image(row, settings), settings))
    except InputError:
        return None


def intensity_sample(resampled: np.ndarray) -> np.ndarray:
    """An even subsample (C, <=GROUP_SAMPLE) of a resampled image's intensities."""
    flat = resampled.reshape(len(resampled), -1)
    return flat[:, :: max(1, flat.shape[1] // GROUP_SAMPLE)]


def group_bounds(
    todo: list[dict], settings: PreprocessSettings, pool: ProcessPoolExecutor
) -> dict[str, np.ndarray]:
    """Per group (a patient's volume when rows are its slices), the configured
    percentiles of all its images' intensities, per channel: (2, C). Rows are visited
    group by group, so memory holds one group's samples at a time."""
    ordered = sorted(todo, key=lambda r: r["group"])
    samples = pool.map(_intensity_sample, [(r, settings) for r in ordered], chunksize=16)
    bounds: dict[str, np.ndarray] = {}
    current, values = None, []
    for row, sample in zip(ordered, samples, strict=True):
        if row["group"] != current:
            if values:
                bounds[current] = percentile_bounds(values, settings.percentiles)
            current, values = row["group"], []
        if sample is not None:
            values.append(sample)
    if values:
        bounds[current] = percentile_bounds(values, settings.percentiles)
    return bounds


def percentile_bounds(samples: list[np.ndarray], percentiles: Sequence[float]) -> np.ndarray:
    """(2, C): the percentiles of a group's pooled intensity samples, per channel."""
    return np.percentile(np.concatenate(samples, axis=1), list(percentiles), axis=1)


def _prepare_or_error(args) -> tuple[dict | None, InputError | None]:
    row, settings, bounds = args
    try:
        return prepare_sample(row, settings, bounds), None
    except InputError as err:
        return None, err


def _decode_problem(row: dict, err: InputError, strict: bool) -> SheetProblem:
    column = "mask" if row["mask_path"] and err.where == row["mask_path"] else "image"
    # Decoders quote the absolute path; the sheet's own relative one (or a hash) replaces it.
    reason = err.problem
    for key in ("image", "mask"):
        if row[f"{key}_path"]:
            shown = path_token(row[key]) if strict else row[key]
            reason = reason.replace(row[f"{key}_path"], shown)
    return SheetProblem(int(row["row"]), row["sample_id"], row[column], reason, True)


def preprocess(
    sheet_path: str | Path, out_dir: str | Path, settings: PreprocessSettings, threads: int = 1
) -> dict:
    """Run the stage; returns the counts that also go into provenance.

    Every problem of the sheet and of its files is collected before anything fails:
    one run names them all. Under ``on_bad_input: skip`` missing and undecodable files
    are quarantined; problems of the sheet itself (labels, ids, paths) always fail.
    """
    out = Path(out_dir)
    plan = plan_rows(sheet_path, settings)
    writer = ShardWriter(out / "data", settings.shard_size)
    kept, problems = decode_rows(plan.rows, plan.rows, settings, threads, writer)
    return write_data(out, plan, kept, problems, writer.finish(), settings, threads)


def decode_rows(
    rows: list[dict],
    every_row: list[dict],
    settings: PreprocessSettings,
    threads: int,
    writer: ShardWriter,
) -> tuple[list[dict], list[SheetProblem]]:
    """Decode ``rows`` into ``writer``; returns the rows kept and the files that failed.
    Intensity bounds per group are learnt from all of the group's rows in
    ``every_row``, so that a shard group's job scales its images as one job would."""
    strict = settings.privacy == "strict"
    kept, problems = [], []
    with ProcessPoolExecutor(
        max_workers=max(threads, 1), initializer=_single_threaded_worker
    ) as pool:
        bounds = {}
        if settings.percentiles_over == "group":
            wanted = {r["group"] for r in rows}
            members = [r for r in every_row if r["group"] in wanted]
            bounds = group_bounds(members, settings, pool)
        jobs = [(r, settings, bounds.get(r["group"])) for r in rows]
        results = pool.map(_prepare_or_error, jobs, chunksize=16)
        for row, (arrays, error) in tqdm(
            zip(rows, results, strict=True), total=len(rows), desc="preprocess"
        ):
            if error is not None:
                problems.append(_decode_problem(row, error, strict))
                continue
            label = np.int64(row["label_index"])
            writer.add({**arrays, "label": label, "has_mask": np.uint8(bool(row["mask"]))})
            kept.append(row)
    return kept, problems


def preprocess_group(
    plan_dir: str | Path,
    sheet_path: str | Path,
    out_dir: str | Path,
    settings: PreprocessSettings,
    group: tuple[int, int],
    threads: int = 1,
) -> dict:
    """Decode shard group ``(number, shards_per_group)``'s rows of the plan."""
    number, shards = group
    plan = read_plan(plan_dir, sheet_path, settings)
    size = shards * settings.shard_size
    rows = plan.rows[number * size : (number + 1) * size]
    if not rows:
        raise XaisegError(f"{plan_dir}: no shard group {number} of {shards} shards")
    out = Path(out_dir)
    writer = ShardWriter(out, settings.shard_size, first_shard=number * shards)
    kept, problems = decode_rows(rows, plan.rows, settings, threads, writer)
    if problems and settings.on_bad_input == "fail":
        raise sheet_error(plan.sheet, problems, settings.privacy == "strict")
    write_rows(out / KEPT, kept)
    write_problems(out / PROBLEMS, problems)
    counts = {"in": len(rows), "kept": len(kept), "quarantined": len(problems)}
    shard_size = settings.shard_size
    write_json(out / INDEX, {"shards": writer.finish(), "shard_size": shard_size, "counts": counts})
    write_provenance(
        out, stage="preprocess_group", params=asdict(settings), seed=settings.seed,
        extra={"counts": counts, "group": list(group), "workers": threads},
        name_inputs=settings.privacy != "strict",
    )  # fmt: skip
    return counts
