"""NIfTI decoding via nibabel, reoriented to the closest canonical (RAS+) orientation."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from xaiseg.errors import InputError
from xaiseg.io.budget import check_pixels

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _load_canonical(
    path: str | Path, max_pixels: int | None = None, frame: int | None = None
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, np.ndarray]:
    """(original image, canonical image, canonical float32 data); with ``frame``, that
    time point of a 4D file only. The header's shape is held to the pixel budget
    before any voxel is decoded."""
    try:
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for a damaged file
        raise InputError(str(path), f"NIfTI file cannot be read ({err})") from err
    shape = image.shape
    spatial = int(np.prod(shape[:3]))
    count = spatial if frame is not None else int(np.prod(shape))
    check_pixels(path, count, max_pixels, "voxels")
    try:
        canonical = nib.as_closest_canonical(image)
        if frame is not None:
            if len(shape) != 4 or not 0 <= frame < shape[3]:
                held = shape[3] if len(shape) == 4 else 1
                raise InputError(
                    str(path), f"time point {frame} out of range (the file has {held})"
                )
            return image, canonical, np.asarray(canonical.dataobj[..., frame], dtype=np.float32)
        return image, canonical, np.asarray(canonical.dataobj, dtype=np.float32)
    except InputError:
        raise
    except Exception as err:
        raise InputError(str(path), f"NIfTI file cannot be read ({err})") from err


def read_nifti(
    path: str | Path, frame: int | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Return a 2D image stored as NIfTI as float32 (C, H, W).

    A 2D image is a volume with one slice. Channels (if several) lie on the fifth axis,
    as NIfTI keeps vector values; the fourth is time, whose points are separate images:
    ``frame`` names one, and a file of several is refused without it. Rows are the
    volume's second axis, so that an image written by ``write_nifti_2d`` reads back as
    it was given.
    """
    data = _load_canonical(path, max_pixels, frame)[2]
    if data.ndim == 4 and data.shape[3] > 1:
        raise InputError(
            str(path),
            f"NIfTI time series ({data.shape[3]} time points on the fourth axis): name one in"
            " the sheet's frame column (0-based), or store channels on the fifth axis",
        )
    if data.ndim == 5 and data.shape[2] == 1 and data.shape[3] == 1:
        return np.ascontiguousarray(data[:, :, 0, 0, :].transpose(2, 1, 0))
    data = np.squeeze(data)
    if data.ndim != 2:
        raise InputError(str(path), f"expected a 2D NIfTI image, got shape {data.shape}")
    return data.T[np.newaxis]


def write_nifti_2d(path: str | Path, image: np.ndarray) -> None:
    """Write a 2D (H, W) or multi-channel (C, H, W) array as a one-slice NIfTI volume
    (channels on the fifth axis, intent "vector") with an identity affine."""
    if image.ndim == 2:
        nib.save(
            nib.Nifti1Image(np.ascontiguousarray(image.T[..., np.newaxis]), np.eye(4)), str(path)
        )
        return
    data = image.transpose(2, 1, 0)[:, :, np.newaxis, np.newaxis, :]
    volume = nib.Nifti1Image(np.ascontiguousarray(data), np.eye(4))
    volume.header.set_intent("vector")
    nib.save(volume, str(path))


def write_volume(path: str | Path, volume: np.ndarray, affine: np.ndarray) -> None:
    """Write (X, Y, Z) or (X, Y, Z, C) with ``affine``."""
    nib.save(nib.Nifti1Image(np.ascontiguousarray(volume), affine), str(path))


def read_volume(
    path: str | Path, channels: bool = False, max_pixels: int | None = None
) -> tuple[np.ndarray, dict]:
    """A 3D volume in closest-canonical (RAS+) orientation, with its geometry.

    Returns float32 (X, Y, Z), or (X, Y, Z, C) when ``channels`` allows a fourth axis
    (a multi-sequence volume as the Medical Segmentation Decathlon ships it), and
    ``{"spacing", "orientation", "original_orientation", "affine"}`` (the canonical
    affine, so volumes can be compared and written back).
    """
    image, canonical, data = _load_canonical(path, max_pixels)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3 and not (channels and data.ndim == 4):
        raise InputError(str(path), f"expected a 3D NIfTI volume, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise InputError(
            str(path), f"NIfTI volume contains {int((~np.isfinite(data)).sum())} NaN/inf voxels"
        )
    geometry = {
        "spacing": [float(s) for s in canonical.header.get_zooms()[:3]],
        "orientation": "".join(nib.aff2axcodes(canonical.affine)),
        "original_orientation": "".join(nib.aff2axcodes(image.affine)),
        "affine": canonical.affine.round(6).tolist(),
    }
    return data, geometry


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """A 2D slice as (H, W) with rows running along the next axis (image convention)."""
    return np.take(volume, index, axis=axis).T
