"""Decode every sheet row, resample, normalise, split, and write tensor shards.

Decoding runs in a process pool (``threads`` workers) while the main process writes
shards, so reading and writing overlap. Bad files are collected, not fatal one by one:
``on_bad_input="fail"`` reports them all at once, ``"skip"`` quarantines them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from monai.transforms import Resize
from tqdm import tqdm

from xaiseg.data.shards import INDEX, ShardWriter
from xaiseg.data.splits import assign_splits
from xaiseg.errors import InputError, XaisegError
from xaiseg.io import load_image, load_mask
from xaiseg.io.sheet import (
    COLUMNS,
    SheetProblem,
    check_sheet,
    path_token,
    sheet_error,
    write_sheet,
)
from xaiseg.provenance import write_json, write_provenance, write_text
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


PERCENTILE_SCOPES = ("image", "group")
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
        mask = load_mask(row["mask_path"], settings.spatial_dims)
        if mask.shape != image.shape[1:] and settings.mask_size_mismatch != "resize":
            raise InputError(
                row["mask_path"],
                f"mask size {mask.shape} differs from image size {image.shape[1:]}",
            )
        mask_out = Resize(size, mode="nearest")(mask[np.newaxis].astype(np.float32))
    # Resample first: percentiles of the smaller image cost a fraction and barely differ.
    image = resample(image, settings)
    if bounds is None:
        image = scale_percentiles(image, *settings.percentiles)
    else:
        image = scale_between(image, bounds[0], bounds[1])
    return {
        "image": np.asarray(image, dtype=np.float32),
        "mask": (np.asarray(mask_out) > 0.5).astype(np.uint8),
    }


def decode_image(row: dict, settings: PreprocessSettings) -> np.ndarray:
    """The row's image (C, *spatial) with the configured channels, as stored."""
    frame = int(row["frame"]) if row.get("frame") else None
    window = settings.dicom_window
    window = tuple(window) if isinstance(window, list) else window
    image = load_image(row["image_path"], window, frame, settings.spatial_dims)
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
        flat = resample(decode_image(row, settings), settings).reshape(settings.channels, -1)
    except InputError:
        return None
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
                bounds[current] = _percentiles(values, settings.percentiles)
            current, values = row["group"], []
        if sample is not None:
            values.append(sample)
    if values:
        bounds[current] = _percentiles(values, settings.percentiles)
    return bounds


def _percentiles(values: list[np.ndarray], percentiles: Sequence[float]) -> np.ndarray:
    return np.percentile(np.concatenate(values, axis=1), list(percentiles), axis=1)


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


@dataclass
class Plan:
    """The checked sheet: rows to decode (absolute paths, split assigned, in sheet
    order), the problems found without decoding, and the sheet's row count."""

    sheet: Path
    rows: list[dict]
    problems: list[SheetProblem]
    n_in: int


def plan_rows(sheet_path: str | Path, settings: PreprocessSettings) -> Plan:
    sheet_path = Path(sheet_path)
    if settings.percentiles_over not in PERCENTILE_SCOPES:
        raise XaisegError(
            f"preprocess percentiles_over {settings.percentiles_over!r}: choose {PERCENTILE_SCOPES}"
        )
    rows, problems = check_sheet(sheet_path, settings.classes, settings.roots)
    flagged = {p.row for p in problems}
    frame = pd.DataFrame([r for r in rows if int(r["row"]) not in flagged])
    if frame.empty:
        raise sheet_error(sheet_path, problems, settings.privacy == "strict")
    frame["label_index"] = frame["label"].map(settings.classes.index)
    frame.loc[frame["group"] == "", "group"] = frame["sample_id"]
    frame["split"] = assign_splits(
        frame, settings.val_fraction, settings.test_fraction, settings.seed
    )
    return Plan(sheet_path, frame.to_dict("records"), problems, len(rows))


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


def write_data(
    out: Path,
    plan: Plan,
    kept: list[dict],
    problems: list[SheetProblem],
    shards: list[str],
    settings: PreprocessSettings,
    threads: int,
) -> dict:
    """The data artifact's index (its shards written), the kept sheet, the quarantine
    and provenance; fails instead when a problem is fatal under the settings."""
    strict = settings.privacy == "strict"
    problems = [*plan.problems, *problems]
    fatal = [p for p in problems if not p.quarantinable]
    if fatal or (problems and settings.on_bad_input == "fail"):
        raise sheet_error(plan.sheet, sorted(problems, key=_order), strict)
    check_split_classes(kept, settings.classes)
    quarantined = sorted(problems, key=_order)
    _write_quarantine(out / "quarantine.tsv", quarantined, strict)
    counts = {"in": plan.n_in, "kept": len(kept), "quarantined": len(quarantined)}
    samples = [_index_entry(r, strict) for r in kept]
    index = {
        "classes": list(settings.classes),
        "image_size": [settings.image_size] * settings.spatial_dims,
        "channels": settings.channels,
        "samples": samples,
        "counts": counts,
        "shards": shards,
        "shard_size": settings.shard_size,
    }
    write_json(out / "data" / INDEX, index)  # last of the shards: marks completeness
    _write_kept_sheet(out / "sheet.tsv", kept, strict)
    write_provenance(
        out / "data",
        stage="preprocess",
        params={**asdict(settings), "roots": [path_token(r) for r in settings.roots]}
        if strict
        else asdict(settings),
        inputs=[plan.sheet],
        seed=settings.seed,
        extra={"counts": counts, "split_sizes": _split_sizes(samples), "workers": threads},
        name_inputs=not strict,
    )
    return counts


def _order(problem: SheetProblem) -> tuple[int, str]:
    return (problem.row or 0, problem.reason)


def check_split_classes(kept: Sequence[dict], classes: Sequence[str]) -> None:
    """Train and val need every class (else nothing to learn or to select on); a test
    split without the finding is flagged in the log."""
    found: dict[str, set[str]] = {}
    for row in kept:
        found.setdefault(row["split"], set()).add(row["label"])
    problems = [
        f"the {split} split holds no {name!r} image"
        for split in ("train", "val")
        for name in classes
        if name not in found.get(split, set())
    ]
    if problems:
        raise InputError(
            "splits",
            "; ".join(problems) + " -- add images of that class, or fix the split column",
        )
    if classes[-1] not in found.get("test", set()):
        print(f"warning: the test split holds no {classes[-1]!r} image: Dice cannot be measured")


def _index_entry(row: dict, strict: bool) -> dict:
    entry = {
        "sample_id": row["sample_id"],
        "label": row["label"],
        "label_index": int(row["label_index"]),
        "split": row["split"],
        "group": path_token(row["group"]) if strict else row["group"],
        "has_mask": bool(row["mask"]),
    }
    if not strict:
        entry["source"] = os.path.basename(row["image"])
    return entry


def _write_kept_sheet(path: Path, kept: list[dict], strict: bool) -> None:
    """The rows kept, with their split, paths as the user wrote them (relative to the
    sheet's folder); under ``privacy: strict`` paths and groups become hashes."""
    frame = pd.DataFrame(kept, columns=[*COLUMNS])
    if strict:
        for column in ("image", "mask", "group"):
            frame[column] = frame[column].map(path_token)
    write_sheet(path, frame)


def _split_sizes(samples: Sequence[dict]) -> dict[str, int]:
    return pd.Series([s["split"] for s in samples]).value_counts().to_dict()


def _write_quarantine(path: Path, bad: list[SheetProblem], strict: bool) -> None:
    frame = pd.DataFrame(
        [
            {
                "row": p.row,
                "sample_id": p.sample_id,
                "file": path_token(p.file) if strict else p.file,
                "reason": p.reason.replace("\n", " "),
            }
            for p in bad
        ],
        columns=["row", "sample_id", "file", "reason"],
    )
    write_text(path, frame.to_csv(sep="\t", index=False))
