"""``xaiseg predict``: a model package applied to new scans, masks written back in each
scan's own geometry and format, one row per input in ``predictions.tsv``.

Inputs stream group by group: decoding runs ahead in worker processes (a bounded
number of groups), the networks see batches of ``batch_size`` images gathered across
groups, and a source's files are written as soon as its last image is predicted, so
memory stays flat in the number of inputs.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.transforms import Resize

from xaiseg.data.preprocess import intensity_sample, normalise, percentile_bounds, resample
from xaiseg.devices import describe, resolve_device
from xaiseg.errors import InputError, XaisegError
from xaiseg.io.sheet import path_token, tsv_text
from xaiseg.predict import write
from xaiseg.predict.package import ModelPackage, read_package
from xaiseg.predict.sources import (
    Decoded,
    SheetRows,
    collect_sources,
    decode_source,
    groups_of,
    part_of,
)
from xaiseg.provenance import throughput, write_provenance, write_text
from xaiseg.saliency import METHODS
from xaiseg.saliency.base import resize_maps
from xaiseg.saliency.members import make_explainer
from xaiseg.saliency.targets import ClassTarget
from xaiseg.settings import PreprocessSettings
from xaiseg.train.classifier import predict_probabilities
from xaiseg.train.segmenter import predict_masks

OPTIONAL = ("probability", "overlay")
FILE_COLUMN = {"probability": "probability_map"}


@dataclass
class Prediction:
    """A source's results: per image, on the networks' grid and on the image's own."""

    decoded: Decoded
    probability: np.ndarray  # classifier's p(finding) per image
    grid_probability: list[np.ndarray]  # segmenter's p(finding), (*grid)
    grid_mask: list[np.ndarray]  # after the gate, (*grid) uint8
    finding: np.ndarray  # per image, the classifier's verdict at the gate threshold
    saliency: list[np.ndarray] | None = None  # (*grid), [0, 1]


class Predictor:
    """The package's two networks (and a saliency method, when asked) on a device."""

    def __init__(
        self,
        package: ModelPackage,
        device: str = "auto",
        batch_size: int = 32,
        saliency: str | None = None,
    ) -> None:
        self.package = package
        self.settings = package.inference.preprocess_settings()
        self.device = resolve_device(device)
        self.batch_size = batch_size
        classifier, self.classifier_spec, segmenter, _ = package.networks()
        self.classifier = classifier.to(self.device)
        self.segmenter = segmenter.to(self.device)
        self.explainer = self._explainer(saliency) if saliency else None

    def _explainer(self, name: str):
        maps = self.package.inference.saliency
        config = maps.get(name) or {"method": name}  # a map of the run, else a bare method
        if config["method"] not in METHODS:
            known = sorted({*maps, *METHODS})
            raise XaisegError(f"--saliency {name!r}: not a map of this package; known: {known}")
        method = METHODS[config["method"]]
        return make_explainer(
            method, self.classifier, config.get("target_layer"), **config.get("options", {})
        )

    def prepare(self, group: list[Decoded]) -> list[np.ndarray]:
        """The networks' inputs of a group's images, scaled as training scaled them."""
        resampled = [[resample(image, self.settings) for image in d.images] for d in group]
        bounds = None
        if self.settings.percentiles_over == "group":
            samples = [intensity_sample(r) for images in resampled for r in images]
            bounds = percentile_bounds(samples, self.settings.percentiles) if samples else None
        return [normalise(r, self.settings, bounds) for images in resampled for r in images]

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """p(finding), the segmenter's p(finding) and (when asked) the map of a batch."""
        target = self.classifier_spec.target_class
        out = {
            "probability": predict_probabilities(
                self.classifier, images, self.device, batch_size=len(images)
            )[:, target],
            "segmentation": predict_masks(
                self.segmenter, images, self.device, batch_size=len(images)
            )[:, 0],
        }
        if self.explainer is not None:
            maps = self.explainer(images.to(self.device), ClassTarget(target), []).float()
            peak = maps.clamp(min=0).flatten(1).amax(1).clamp(min=1e-12)
            scaled = maps.clamp(min=0) / peak.view(-1, *([1] * (maps.ndim - 1)))
            out["saliency"] = scaled[:, 0].detach().cpu()
        return out


def predict_sources(
    predictor: Predictor, sources: Sequence, workers: int = 0
) -> Iterator[Prediction]:
    """Each source's prediction, in input order, batches gathered across groups."""
    inference = predictor.package.inference
    pending: list[tuple[Decoded, list[np.ndarray]]] = []
    waiting = 0
    for group in _decoded_groups(sources, predictor.settings, inference.slice_axis, workers):
        usable = [d for d in group if not d.problem]
        inputs = predictor.prepare(usable) if usable else []
        position = 0
        for decoded in group:
            count = len(decoded.images)
            pending.append((decoded, inputs[position : position + count]))
            position += count
            waiting += count
        if waiting >= predictor.batch_size:
            yield from _flush(predictor, pending)
            pending, waiting = [], 0
    yield from _flush(predictor, pending)


def _flush(predictor: Predictor, pending: list) -> Iterator[Prediction]:
    inputs = [image for _decoded, images in pending for image in images]
    results: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(inputs), predictor.batch_size):
        batch = torch.from_numpy(np.stack(inputs[start : start + predictor.batch_size]))
        for key, value in predictor(batch).items():
            results.setdefault(key, []).append(value)
    merged = {k: torch.cat(v).numpy() for k, v in results.items()}
    inference = predictor.package.inference
    position = 0
    for decoded, images in pending:
        part = slice(position, position + len(images))
        position += len(images)
        probability = merged.get("probability", np.zeros(0))[part]
        segmentation = list(merged.get("segmentation", np.zeros((0,)))[part])
        finding = probability >= inference.gate_threshold
        masks = [(p >= 0.5).astype(np.uint8) for p in segmentation]
        if inference.gate_applied:  # as the run's own predictions were gated
            masks = [m * bool(f) for m, f in zip(masks, finding, strict=True)]
        saliency = list(merged["saliency"][part]) if "saliency" in merged else None
        yield Prediction(decoded, probability, segmentation, masks, finding, saliency)


def _decoded_groups(
    sources: Sequence, settings: PreprocessSettings, axis: int, workers: int
) -> Iterator[list[Decoded]]:
    groups = groups_of(list(sources), by_group=settings.percentiles_over == "group")
    if workers <= 0:
        for group in groups:
            yield [decode_source(s, settings, axis) for s in group]
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        ahead: deque = deque()
        for group in groups:
            ahead.append(pool.submit(_decode_group, group, settings, axis))
            if len(ahead) > 2 * workers:  # bounded: memory flat in the number of inputs
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _decode_group(group, settings, axis) -> list[Decoded]:
    torch.set_num_threads(1)
    return [decode_source(s, settings, axis) for s in group]


# --- back to each input's own geometry -------------------------------------------------


def to_native(plane: np.ndarray, shape: Sequence[int], labels: bool = False) -> np.ndarray:
    """A grid plane (or volume) resampled to the image's own size: nearest for labels
    (the network's, unchanged), linear for maps (as saliency maps are resized)."""
    shape = tuple(shape)
    if labels:
        return np.asarray(Resize(shape, mode="nearest")(plane[np.newaxis].astype(np.float32)))[0]
    return resize_maps(torch.from_numpy(np.asarray(plane, np.float32))[None, None], shape)[
        0, 0
    ].numpy()


def write_prediction(prediction: Prediction, out: Path, outputs: Sequence[str], label: str) -> dict:
    """The source's files; returns its predictions.tsv row (less the input column)."""
    decoded = prediction.decoded
    shapes = [image.shape[1:] for image in decoded.images]
    masks = [
        to_native(m, s, labels=True).astype(np.uint8)
        for m, s in zip(prediction.grid_mask, shapes, strict=True)
    ]
    grids = {"probability": prediction.grid_probability, "saliency": prediction.saliency}
    maps = {
        key: [to_native(p, s) for p, s in zip(grid, shapes, strict=True)]
        for key, grid in grids.items()
        if grid is not None and (key in outputs or key == "saliency")
    }
    kind = decoded.source.kind
    writer = {"image": _write_image, "volume": _write_volume, "series": _write_series}[kind]
    files = writer(decoded, masks, maps, out, "overlay" in outputs, label)
    pixels = int(sum(int(m.sum()) for m in masks))
    unit, size = _measure(decoded, pixels)
    return {
        "kind": kind,
        "images": len(masks),
        "probability": round(float(prediction.probability.max()), 6),
        "finding": bool(prediction.finding.any()),
        "lesion_pixels": pixels,
        "lesion_size": size,
        "size_unit": unit,
        "note": decoded.note,
        # "probability" is the classifier's; the segmenter's map file is named apart.
        **{FILE_COLUMN.get(k, k): path.relative_to(out).as_posix() for k, path in files.items()},
    }


def _measure(decoded: Decoded, pixels: int) -> tuple[str, float | None]:
    """The lesion's area (mm², one image) or volume (mm³) where the file gives its
    spacing; none where it does not (PNG, JPEG)."""
    geometry = decoded.geometry
    if decoded.source.kind == "volume":
        return "mm3", round(pixels * float(np.prod(geometry["zooms"])), 3)
    if decoded.source.kind == "series" and geometry.get("spacing_known"):
        spacing = geometry["spacing"]
        if len(decoded.images) == 1:
            return "mm2", round(pixels * spacing[0] * spacing[1], 3)
        return "mm3", round(pixels * float(np.prod(spacing)), 3)
    return "", None


def _write_image(decoded, masks, maps, out, overlay: bool, label: str) -> dict[str, Path]:
    source = decoded.source
    if source.paths[0].name.lower().endswith((".nii", ".nii.gz")):
        files = _write_nifti_image(decoded, masks, maps, out)
    else:
        suffix = write.raster_suffix(source.paths[0])
        files = {
            key: write.write_raster(
                write.target(out, source.name, f"_{key}{suffix}"), write.as_bytes(planes[0], key)
            )
            for key, planes in {"mask": masks, **maps}.items()
        }
    if overlay:
        target = write.target(out, source.name, "_overlay.png")
        files["overlay"] = write.write_overlay(target, decoded.images[0], masks[0])
    return files


def _write_nifti_image(decoded, masks, maps, out) -> dict[str, Path]:
    """A one-slice NIfTI: the plane back into the file's own voxel order and affine."""
    geometry = decoded.geometry
    files = {}
    for key, planes in {"mask": masks, **maps}.items():
        dtype = np.uint8 if key == "mask" else np.float32
        # read_nifti gave the plane transposed (rows along the second axis): undo it.
        volume = planes[0].T.reshape(geometry["canonical_shape"]).astype(dtype)
        target = write.target(out, decoded.source.name, f"_{key}.nii.gz")
        files[key] = write.write_nifti_like(
            target, write.back_to_file_orientation(volume, geometry), geometry
        )
    return files


def _write_volume(decoded, masks, maps, out, overlay: bool, label: str) -> dict[str, Path]:
    geometry = decoded.geometry
    files = {}
    for key, planes in {"mask": masks, **maps}.items():
        dtype = np.uint8 if key == "mask" else np.float32
        volume = planes[0] if "axis" not in geometry else write.volume_of(planes, geometry["axis"])
        data = write.back_to_file_orientation(volume.astype(dtype), geometry)
        target = write.target(out, decoded.source.name, f"_{key}.nii.gz")
        files[key] = write.write_nifti_like(target, data, geometry)
    if overlay and "axis" in geometry:  # the slice of largest lesion area
        index = int(np.argmax([m.sum() for m in masks]))
        target = write.target(out, decoded.source.name, "_overlay.png")
        files["overlay"] = write.write_overlay(target, decoded.images[index], masks[index])
    return files


def _write_series(decoded, masks, maps, out, overlay: bool, label: str) -> dict[str, Path]:
    """A DICOM SEG (when the files say where they lie) and a NIfTI copy of the mask and
    maps, x along the columns, y along the rows, z along the sorted instances."""
    geometry, name = decoded.geometry, decoded.source.name
    files = {}
    if not geometry["placed"]:
        decoded.note = "no DICOM SEG: the files do not say where they lie (no frame of reference)"
    else:
        target = write.target(out, name, "_seg.dcm")
        try:
            files["seg"] = write.write_dicom_seg(target, np.stack(masks), decoded, label)
        except Exception as err:  # highdicom refuses what the standard does not allow
            decoded.note = f"no DICOM SEG: {str(err).splitlines()[0][:200]}"
    for key, planes in {"mask": masks, **maps}.items():
        dtype = np.uint8 if key == "mask" else np.float32
        volume = np.stack([p.T for p in planes], axis=2).astype(dtype)
        target = write.target(out, name, f"_{key}.nii.gz")
        files[key] = write.write_nifti_affine(target, volume, geometry["affine"])
    if overlay:
        index = int(np.argmax([m.sum() for m in masks]))
        target = write.target(out, name, "_overlay.png")
        files["overlay"] = write.write_overlay(target, decoded.images[index], masks[index])
    return files


# --- the command ---------------------------------------------------------------------------


def predict(
    model_dir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    device: str = "auto",
    batch_size: int = 32,
    workers: int = 0,
    outputs: Sequence[str] = (),
    saliency: str | None = None,
    exclude: Sequence[str] = (),
    privacy: str = "standard",
    on_bad_input: str = "fail",
    rows: SheetRows | None = None,
    part: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Segment ``inputs`` into ``out_dir``; returns the rows of ``predictions.tsv``.

    A file that cannot be read gets a row naming its problem and no outputs; with
    ``on_bad_input="fail"`` the command then fails, after every other input is written.
    """
    unknown = sorted(set(outputs) - set(OPTIONAL))
    if unknown:
        raise XaisegError(f"unknown optional outputs {unknown}; choose from {list(OPTIONAL)}")
    out = Path(out_dir)
    package = read_package(model_dir)
    predictor = Predictor(package, device, batch_size, saliency)
    sources = collect_sources(
        list(inputs), predictor.settings.spatial_dims, tuple(exclude), rows or SheetRows()
    )
    sources = part_of(sources, *part) if part else sources
    label = package.metadata["classes"][-1]
    rows, images = [], 0
    started = time.perf_counter()
    for prediction in predict_sources(predictor, sources, workers):
        source = prediction.decoded.source
        shown = source.name if privacy == "strict" else str(source.paths[0])
        row = {"input": shown, "name": source.name}
        problem, written = prediction.decoded.problem, {}
        if not problem:
            try:
                written = write_prediction(prediction, out, outputs, label)
            except Exception as err:  # one odd file must not lose the thousands around it
                problem = f"{source.paths[0]}: outputs not written ({err})"
        if problem:
            if privacy == "strict":
                for path in source.paths:
                    problem = problem.replace(str(path), path_token(str(path)))
            rows.append({**row, "kind": source.kind, "problem": problem})
            continue
        rows.append({**row, **written, "problem": ""})
        images += len(prediction.decoded.images)
    seconds = time.perf_counter() - started
    # object: counts stay integers where rows of unreadable inputs leave them blank
    table = pd.DataFrame(rows, columns=[*_COLUMNS, *_file_columns(rows)], dtype=object)
    write_text(out / "predictions.tsv", tsv_text(table))
    speed = throughput(images, seconds)
    write_provenance(
        out,
        stage="predict",
        params={
            "model": package.metadata["name"],
            "batch_size": batch_size,
            "outputs": list(outputs),
            "saliency": saliency,
        },
        inputs=[Path(model_dir) / "provenance.json"],
        device=describe(predictor.device),
        extra={"throughput": speed},
    )
    rate = speed["images_per_second"] or 0.0
    print(f"predict: {images} images in {seconds:.1f} s ({rate:.1f} images/s)")
    bad = table[table["problem"].astype(bool)]
    if len(bad) and on_bad_input == "fail":
        listed = "\n  ".join(bad["problem"])
        raise InputError(
            "predict",
            f"{len(bad)} input(s) could not be read (the others are written):\n  {listed}",
        )
    return table


_COLUMNS = (
    "input",
    "name",
    "kind",
    "images",
    "probability",
    "finding",
    "lesion_pixels",
    "lesion_size",
    "size_unit",
    "problem",
    "note",
)


def _file_columns(rows: list[dict]) -> list[str]:
    known = set(_COLUMNS)
    order = ("mask", "seg", "probability_map", "saliency", "overlay")
    found = {k for row in rows for k in row if k not in known}
    return [k for k in order if k in found] + sorted(found - set(order))


def join_predictions(parts: Sequence[str | Path], out: str | Path) -> pd.DataFrame:
    """One ``predictions.tsv`` of several parts' (file columns made relative to ``out``)."""
    out = Path(out)
    tables = []
    for folder in map(Path, parts):
        table = pd.read_csv(folder / "predictions.tsv", sep="\t", dtype=str, keep_default_na=False)
        prefix = Path(os.path.relpath(folder, out)).as_posix()
        for column in _file_columns(table.to_dict("records")):
            table[column] = [f"{prefix}/{v}" if v else "" for v in table[column]]
        tables.append(table)
    joined = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=_COLUMNS)
    columns = [*_COLUMNS, *_file_columns(joined.to_dict("records"))]
    joined = joined.reindex(columns=columns)
    write_text(out / "predictions.tsv", tsv_text(joined))
    return joined
