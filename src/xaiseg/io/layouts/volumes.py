"""Shared by the volume layouts (flat NIfTI, BraTS, Decathlon): a case is one or more
channel files and a label map; they are stacked, checked against each other, turned
into a foreground mask, and written either as 2D slices or as whole volumes.

Slicing (``axis`` 0, 1 or 2 in RAS+) writes one-slice NIfTI files under
``derived_dir/slices``, one row per slice, labelled by whether the slice holds
foreground; ``axis=None`` writes each case as one (X, Y, Z, C) volume under
``derived_dir/volumes``, one row per case, for ``preprocess.spatial_dims: 3``. The
group is always the case, so a split never cuts a patient. Each case's geometry goes to
``volumes.json`` beside the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import DERIVED, sample_id
from xaiseg.io.nifti import read_volume, take_slice, write_nifti_2d, write_volume
from xaiseg.provenance import write_json


@dataclass(frozen=True)
class Channel:
    """A channel source: a 3D file, one channel of a 4D file, or (``index=None`` on a
    4D file) all of its channels in file order."""

    path: Path
    index: int | None = None
    name: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    channels: tuple[Channel, ...]
    labels: Path


def nifti_name(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def is_nifti(path: Path) -> bool:
    # Archives made on macOS carry "._name.nii.gz" resource forks (the Decathlon's do).
    name = path.name
    return path.is_file() and name.endswith((".nii", ".nii.gz")) and not name.startswith(".")


def foreground(labels: np.ndarray, foreground_labels: Sequence[int] = ()) -> np.ndarray:
    """The foreground of a label map: any label above 0, or the listed labels only
    (BraTS "tumour core" is ``[1, 4]``). Float-stored maps are rounded first."""
    rounded = np.rint(labels)
    if foreground_labels:
        return np.isin(rounded, list(foreground_labels))
    return rounded > 0


def stack_case(case: Case) -> tuple[np.ndarray, np.ndarray, dict]:
    """(image (X, Y, Z, C), labels (X, Y, Z), geometry): every file of the case must
    share the first file's shape and affine."""
    loaded: dict[Path, tuple[np.ndarray, dict]] = {}
    parts = []
    for channel in case.channels:
        if channel.path not in loaded:
            loaded[channel.path] = read_volume(channel.path, channels=True)
        volume, geometry = loaded[channel.path]
        _check_same(case, channel.path, geometry, volume.shape[:3], case.channels[0].path, loaded)
        if volume.ndim == 3:
            parts.append(volume[..., np.newaxis])
        elif channel.index is None:
            parts.append(volume)
        elif channel.index < volume.shape[3]:
            parts.append(volume[..., channel.index : channel.index + 1])
        else:
            raise InputError(
                str(channel.path),
                f"case {case.name}: no channel {channel.index} ({channel.name or 'unnamed'});"
                f" the file has {volume.shape[3]}",
            )
    labels, label_geometry = read_volume(case.labels)
    _check_same(case, case.labels, label_geometry, labels.shape, case.channels[0].path, loaded)
    image = np.concatenate(parts, axis=3)
    return image, labels, loaded[case.channels[0].path][1]


def _check_same(case: Case, path: Path, geometry: dict, shape, first: Path, loaded) -> None:
    reference, ref_geometry = loaded[first]
    if tuple(shape) != reference.shape[:3]:
        raise InputError(
            str(path),
            f"case {case.name}: shape {tuple(shape)} differs from {first.name}"
            f" {reference.shape[:3]}",
        )
    if not np.allclose(geometry["affine"], ref_geometry["affine"], atol=1e-3):
        raise InputError(
            str(path), f"case {case.name}: its affine (position, spacing) differs from {first.name}"
        )


def volume_rows(
    cases: Iterable[Case],
    root: Path,
    derived_dir: Path | None,
    axis: int | None,
    negative: str,
    positive: str,
    foreground_labels: Sequence[int] = (),
) -> pd.DataFrame:
    """The sheet rows of ``cases``, sliced along ``axis`` or kept whole (``None``)."""
    out_dir = Path(derived_dir or root / DERIVED) / ("volumes" if axis is None else "slices")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, geometries = [], {}
    for case in cases:
        image, labels, geometry = stack_case(case)
        mask = foreground(labels, foreground_labels)
        geometries[case.name] = geometry
        write = _write_volume if axis is None else _write_slices
        files = write(case, image, mask, geometry, out_dir, axis)
        for sid, image_file, mask_file, has_foreground in files:
            rows.append(
                {
                    "sample_id": sid,
                    "image": str(image_file.resolve()),
                    "label": positive if has_foreground else negative,
                    "mask": str(mask_file.resolve()),
                    "group": sample_id(case.name),
                    "split": "",
                }
            )
    write_json(out_dir / "volumes.json", {"axis": axis, "volumes": geometries})
    return pd.DataFrame(rows)


def _write_slices(case: Case, image, mask, geometry: dict, out_dir: Path, axis: int):
    other = tuple(a for a in range(3) if a != axis)
    has_foreground = mask.any(axis=other)
    for index in range(image.shape[axis]):
        sid = sample_id(f"{case.name}_{index:04d}")
        channels = [take_slice(image[..., c], axis, index) for c in range(image.shape[3])]
        image_file, mask_file = out_dir / f"{sid}.nii.gz", out_dir / f"{sid}_mask.nii.gz"
        write_nifti_2d(image_file, channels[0] if len(channels) == 1 else np.stack(channels))
        write_nifti_2d(mask_file, take_slice(mask, axis, index).astype(np.uint8))
        yield sid, image_file, mask_file, bool(has_foreground[index])


def _write_volume(case: Case, image, mask, geometry: dict, out_dir: Path, axis: None):
    sid = sample_id(case.name)
    affine = np.asarray(geometry["affine"])
    image_file, mask_file = out_dir / f"{sid}.nii.gz", out_dir / f"{sid}_mask.nii.gz"
    write_volume(image_file, image[..., 0] if image.shape[3] == 1 else image, affine)
    write_volume(mask_file, mask.astype(np.uint8), affine)
    yield sid, image_file, mask_file, bool(mask.any())
