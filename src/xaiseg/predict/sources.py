"""What ``xaiseg predict`` reads: files, folders, sample sheets and DICOM series, each
turned into sources (one output each) in groups (one intensity scale each, when the
package's preprocessing scales per group).

A source is a 2D image file (PNG, JPEG, TIFF, BMP, a one-slice NIfTI, one frame of a
DICOM), a NIfTI volume, or the DICOM files of one series (sorted along the slice
normal). Decoding goes through the readers training used (``xaiseg.io``,
``xaiseg.data.preprocess.decode_image``), so a scan is read the same way in both.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom

from xaiseg.data.preprocess import MIN_SIDE, decode_image, match_channels
from xaiseg.errors import InputError, XaisegError
from xaiseg.io.dicom import DICOM_SUFFIXES, decode_dicom
from xaiseg.io.nifti import NIFTI_SUFFIXES, take_slice
from xaiseg.io.raster import RASTER_SUFFIXES
from xaiseg.io.readers import file_suffix, load_image
from xaiseg.settings import PreprocessSettings

SHEET_SUFFIXES = (".tsv", ".csv")


@dataclass(frozen=True)
class Source:
    kind: str  # "image" | "volume" | "series"
    paths: tuple[Path, ...]
    name: str  # output stem relative to OUT, the input's own relative name
    group: str
    frame: int | None = None


@dataclass
class Decoded:
    """A source's images (C, *spatial) at their own size, and where they lie."""

    source: Source
    images: list[np.ndarray]
    geometry: dict = field(default_factory=dict)
    problem: str = ""  # why it could not be read: no outputs
    note: str = ""  # what could not be written, the rest written


def _kind_of(path: Path) -> str | None:
    """The reader a file goes to, by the readers' own rule (suffix, else preamble)."""
    if path.suffix.lower() in SHEET_SUFFIXES:
        return "sheet"
    suffix = file_suffix(path)
    for kind, suffixes in (("nifti", NIFTI_SUFFIXES), ("dicom", DICOM_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return "raster" if suffix in RASTER_SUFFIXES else None


def _stem(relative: Path) -> str:
    """The name less a suffix a reader knows ("scan.nii.gz" -> "scan"; "IM0001" stays)."""
    text = relative.as_posix()
    known = (*NIFTI_SUFFIXES, *DICOM_SUFFIXES, *RASTER_SUFFIXES)
    suffix = next((s for s in known if text.lower().endswith(s)), "")
    return text[: len(text) - len(suffix)]


@dataclass(frozen=True)
class SheetRows:
    """Which rows of a sheet, and where its relative paths start."""

    root: Path | None = None  # None: the sheet's own folder
    split: str = ""  # only rows whose split column says this
    limit: int | None = None  # the first rows only


def collect_sources(
    inputs: list[str | Path],
    spatial_dims: int = 2,
    exclude: tuple[str, ...] = (),
    rows: SheetRows | None = None,
) -> list[Source]:
    """Every source of ``inputs`` (files, folders searched recursively, sheets), in
    order; files whose name matches an ``exclude`` pattern are left out."""
    sources: list[Source] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            files = [p for p in files if not any(fnmatch.fnmatch(p.name, x) for x in exclude)]
            sources += _from_files(files, path, spatial_dims, strict_kind=False)
        elif not path.is_file():
            raise InputError(str(path), "no such file or folder")
        elif _kind_of(path) == "sheet":
            sources += _from_sheet(path, spatial_dims, rows or SheetRows())
        else:
            sources += _from_files([path], path.parent, spatial_dims, strict_kind=True)
    names = [s.name for s in sources]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise XaisegError(f"inputs would write the same outputs: {clashes[:5]}; rename or split")
    if not sources:
        raise XaisegError(f"no images found in {[str(i) for i in inputs]}")
    return sources


def _from_files(
    files: list[Path], base: Path, spatial_dims: int, strict_kind: bool
) -> list[Source]:
    sources, dicoms = [], []
    for path in files:
        kind = _kind_of(path)
        if kind is None or kind == "sheet":
            if strict_kind:
                raise InputError(str(path), "not an image xaiseg reads (DICOM, NIfTI, PNG, ...)")
            continue
        relative = path.relative_to(base)
        group = relative.parent.as_posix() if relative.parent != Path(".") else base.name
        if kind == "dicom":
            dicoms.append(path)
        elif kind == "nifti" and (spatial_dims == 3 or _is_volume(path)):
            sources.append(Source("volume", (path,), _stem(relative), _stem(relative)))
        else:
            sources.append(Source("image", (path,), _stem(relative), group))
    return sources + _dicom_series(dicoms, base)


def _is_volume(path: Path) -> bool:
    try:
        shape = nib.load(str(path)).shape
    except Exception as err:  # nibabel raises many types for a damaged file
        raise InputError(str(path), f"NIfTI file cannot be read ({err})") from err
    return len(shape) >= 3 and min(shape[:3]) > 1


def _dicom_series(paths: list[Path], base: Path) -> list[Source]:
    """DICOM files grouped by folder and series; a file without a series is its own."""
    series: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path in paths:
        try:
            uid = str(pydicom.dcmread(path, stop_before_pixels=True, force=True).SeriesInstanceUID)
        except Exception:  # no series (or unreadable: decoding names the problem later)
            uid = f"file:{path.name}"
        series[(path.parent.as_posix(), uid)].append(path)
    sources = []
    for (folder, _uid), members in series.items():
        if len(members) == 1:
            name = _stem(members[0].relative_to(base))
        else:
            relative = Path(folder).relative_to(base) if Path(folder) != base else Path(base.name)
            name = relative.as_posix()
            if sum(1 for (f, _u) in series if f == folder) > 1:
                name = f"{name}/{_stem(members[0].relative_to(Path(folder)))}"
        sources.append(Source("series", tuple(sorted(members)), name, name))
    return sources


def _from_sheet(sheet: Path, spatial_dims: int, rows: SheetRows) -> list[Source]:
    """A sheet's rows: ``image`` (relative to the sheet's folder), optional ``frame``
    and ``group``; the ``sample_id`` names the outputs when given."""
    frame = pd.read_csv(sheet, sep="\t" if sheet.suffix == ".tsv" else ",", dtype=str)
    frame = frame.fillna("")
    if "image" not in frame.columns:
        raise InputError(str(sheet), "a prediction sheet needs an 'image' column")
    if rows.split:
        if "split" not in frame.columns:
            raise InputError(str(sheet), f"no split column to pick {rows.split!r} rows from")
        frame = frame[frame["split"] == rows.split]
    frame = frame.head(rows.limit) if rows.limit is not None else frame
    base = rows.root or sheet.parent
    sources = []
    for number, row in zip(frame.index + 2, frame.to_dict("records"), strict=True):
        path = Path(row["image"])
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise InputError(str(sheet), f"row {number}: image {row['image']!r} does not exist")
        name = row.get("sample_id") or _stem(Path(row["image"]))
        group = row.get("group") or Path(row["image"]).parent.as_posix()
        index = int(row["frame"]) if row.get("frame") else None
        kind = _kind_of(path)
        if kind == "nifti" and (spatial_dims == 3 or _is_volume(path)):
            sources.append(Source("volume", (path,), name, name, index))
        elif kind == "dicom":
            sources.append(Source("series", (path,), name, group, index))
        else:
            sources.append(Source("image", (path,), name, group, index))
    return sources


def part_of(sources: list[Source], number: int, parts: int) -> list[Source]:
    """Part ``number`` (0-based) of ``parts``: whole groups, about equal in sources."""
    if not 0 <= number < parts:
        raise XaisegError(f"part {number} of {parts}: numbers run from 0 to {parts - 1}")
    chosen, seen = [], 0
    for group in groups_of(sources):
        if seen * parts // len(sources) == number:
            chosen += group
        seen += len(group)
    return chosen


def groups_of(sources: list[Source], by_group: bool = True) -> list[list[Source]]:
    """Sources by group, groups in the order they first appear; each source alone when
    images are scaled each by its own intensities (``by_group=False``), so that memory
    holds one source at a time, not a folder's worth."""
    if not by_group:
        return [[source] for source in sources]
    grouped: dict[str, list[Source]] = {}
    for source in sources:
        grouped.setdefault(source.group, []).append(source)
    return list(grouped.values())


# --- decoding ---------------------------------------------------------------------------


def decode_source(source: Source, settings: PreprocessSettings, slice_axis: int) -> Decoded:
    """The source's images, or its problem (named, not raised: one bad file among
    thousands must not lose the others)."""
    try:
        if source.kind == "image":
            path = source.paths[0]
            row = {"image_path": str(path), "frame": source.frame}
            geometry = nifti_geometry(path) if _kind_of(path) == "nifti" else {}
            return Decoded(source, [decode_image(row, settings)], geometry)
        if source.kind == "volume":
            return _decode_volume(source, settings, slice_axis)
        return _decode_series(source, settings)
    except InputError as err:
        return Decoded(source, [], problem=str(err))


def nifti_geometry(path: Path) -> dict:
    """Where a NIfTI's voxels lie, as written back: its own affine and header, and the
    closest-canonical (RAS+) affine and shape the readers decode it in."""
    image = nib.load(str(path))
    canonical = nib.as_closest_canonical(image)
    return {
        "affine": image.affine,
        "canonical_affine": canonical.affine,
        "canonical_shape": canonical.shape[:3],
        "header": image.header,
        "zooms": [float(z) for z in canonical.header.get_zooms()[:3]],
    }


def _decode_volume(source: Source, settings: PreprocessSettings, slice_axis: int) -> Decoded:
    path = source.paths[0]
    geometry = nifti_geometry(path)
    volume = load_image(path, spatial_dims=3, max_pixels=settings.max_pixels)  # (C, X, Y, Z)
    if settings.spatial_dims == 3:
        return Decoded(source, [_channels(volume, settings, path)], geometry)
    data = np.moveaxis(volume, 0, -1)
    geometry["axis"] = slice_axis
    slices = []
    for index in range(data.shape[slice_axis]):
        planes = [take_slice(data[..., c], slice_axis, index) for c in range(data.shape[3])]
        slices.append(_channels(np.stack(planes), settings, path))
    return Decoded(source, slices, geometry)


def _channels(image: np.ndarray, settings: PreprocessSettings, path: Path) -> np.ndarray:
    if min(image.shape[1:]) < MIN_SIDE and settings.spatial_dims == 3:
        raise InputError(str(path), f"volume is {image.shape[1:]} voxels; need {MIN_SIDE} per side")
    try:
        return match_channels(image, settings.channels)
    except ValueError as err:
        raise InputError(str(path), str(err)) from err


def _decode_series(source: Source, settings: PreprocessSettings) -> Decoded:
    """Instances sorted along the slice normal (instance number when positions are
    missing); each frame one image."""
    headers = [pydicom.dcmread(p, stop_before_pixels=True, force=True) for p in source.paths]
    order = sorted(range(len(headers)), key=lambda i: _position_key(headers[i]))
    paths = [source.paths[i] for i in order]
    headers = [headers[i] for i in order]
    window = settings.dicom_window
    window = tuple(window) if isinstance(window, list) else window
    images, frames = [], []
    for path in paths:
        decoded = decode_dicom(path, window, settings.max_pixels)
        wanted = [source.frame] if source.frame is not None else range(len(decoded))
        for index in wanted:
            if not 0 <= index < len(decoded):
                raise InputError(str(path), f"frame {index} out of range ({len(decoded)})")
            image = decoded[index]
            if not np.isfinite(image).all():
                raise InputError(str(path), "image contains NaN or infinite values")
            images.append(_channels(image, settings, path))
            frames.append((path, index))
    geometry = {"headers": headers, "paths": paths, "frames": frames}
    geometry.update(dicom_geometry(headers, images[0].shape[1:]))
    return Decoded(source, images, geometry)


def _position_key(header) -> tuple:
    normal = _normal(header)
    position = getattr(header, "ImagePositionPatient", None)
    if normal is not None and position is not None:
        return (0, float(np.dot(normal, [float(v) for v in position])))
    return (1, int(getattr(header, "InstanceNumber", 0) or 0))


def _normal(header) -> np.ndarray | None:
    orientation = getattr(header, "ImageOrientationPatient", None)
    if orientation is None or len(orientation) != 6:
        return None
    row, column = np.array(orientation[:3], float), np.array(orientation[3:], float)
    return np.cross(row, column)


def dicom_geometry(headers: list, shape: tuple[int, ...]) -> dict:
    """The RAS+ affine of a series' voxel grid (x: column, y: row, z: slice), its
    spacing in mm, and whether the files said where they lie (``placed``)."""
    first = headers[0]
    spacing = _numbers(getattr(first, "PixelSpacing", None), 2)
    spacing_known = spacing is not None and min(spacing) > 0
    row_step, column_step = spacing if spacing_known else (1.0, 1.0)  # mm between rows, columns
    orientation = _numbers(getattr(first, "ImageOrientationPatient", None), 6)
    position = _numbers(getattr(first, "ImagePositionPatient", None), 3)
    placed = orientation is not None and position is not None and _orthonormal(orientation)
    along_row = np.array(orientation[:3], float) if placed else np.array([1.0, 0, 0])
    along_column = np.array(orientation[3:], float) if placed else np.array([0, 1.0, 0])
    origin = np.array([float(v) for v in position], float) if placed else np.zeros(3)
    slice_step = _slice_step(headers, along_row, along_column, placed)
    affine = np.eye(4)
    affine[:3, 0] = along_row * column_step
    affine[:3, 1] = along_column * row_step
    affine[:3, 2] = slice_step
    affine[:3, 3] = origin
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    return {
        "affine": lps_to_ras @ affine,
        "spacing": [column_step, row_step, float(np.linalg.norm(slice_step))],
        "placed": placed,
        "spacing_known": spacing_known,
    }


def _numbers(value, count: int) -> list[float] | None:
    """A multi-valued DICOM number as floats, or None when absent or malformed."""
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _orthonormal(orientation: list[float]) -> bool:
    """Two unit direction cosines at right angles, as the standard requires."""
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    unit = abs(np.linalg.norm(row) - 1) < 1e-3 and abs(np.linalg.norm(column) - 1) < 1e-3
    return bool(unit and abs(float(row @ column)) < 1e-3)


def _slice_step(headers: list, along_row: np.ndarray, along_column: np.ndarray, placed: bool):
    """From the first instance to the next: the positions' mean step where they differ,
    else the slice normal times the spacing between slices (or their thickness)."""
    positions = [_numbers(getattr(h, "ImagePositionPatient", None), 3) for h in headers]
    if placed and len(headers) > 1 and all(p is not None for p in positions):
        step = (np.array(positions[-1]) - np.array(positions[0])) / (len(headers) - 1)
        if np.linalg.norm(step) > 1e-6:  # instances at one position (echoes, phases): no step
            return step
    gaps = [getattr(headers[0], k, None) for k in ("SpacingBetweenSlices", "SliceThickness")]
    thickness = next((float(g) for g in gaps if _numbers([g], 1) and float(g) > 0), 1.0)
    return np.cross(along_row, along_column) * thickness
