"""NIfTI decoding via nibabel, reoriented to the closest canonical (RAS+) orientation."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from xaiseg.errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _load_canonical(path: str | Path) -> tuple[nib.Nifti1Image, nib.Nifti1Image, np.ndarray]:
    """(original image, canonical image, canonical float32 data)."""
    try:
        image = nib.load(str(path))
        canonical = nib.as_closest_canonical(image)
        return image, canonical, np.asarray(canonical.dataobj, dtype=np.float32)
    except Exception as err:  # nibabel raises many types for a damaged file
        raise InputError(str(path), f"NIfTI file cannot be read ({err})") from err


def read_nifti(path: str | Path) -> np.ndarray:
    """Return a 2D image stored as NIfTI as float32 (C, H, W).

    A 2D image is a volume with one slice, its channels (if several) on the fourth
    axis; rows are the volume's second axis so that an image written by
    ``write_nifti_2d`` reads back as it was given.
    """
    data = _load_canonical(path)[2]
    if data.ndim == 4 and data.shape[2] == 1:
        return np.ascontiguousarray(data[:, :, 0, :].transpose(2, 1, 0))
    data = np.squeeze(data)
    if data.ndim != 2:
        raise InputError(str(path), f"expected a 2D NIfTI image, got shape {data.shape}")
    return data.T[np.newaxis]


def write_nifti_2d(path: str | Path, image: np.ndarray) -> None:
    """Write a 2D (H, W) or multi-channel (C, H, W) array as a one-slice NIfTI volume
    (channels on the fourth axis) with an identity affine."""
    if image.ndim == 2:
        data = image.T[..., np.newaxis]
    else:
        data = image.transpose(2, 1, 0)[:, :, np.newaxis, :]
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), np.eye(4)), str(path))


def write_volume(path: str | Path, volume: np.ndarray, affine: np.ndarray) -> None:
    """Write (X, Y, Z) or (X, Y, Z, C) with ``affine``."""
    nib.save(nib.Nifti1Image(np.ascontiguousarray(volume), affine), str(path))


def read_volume(path: str | Path, channels: bool = False) -> tuple[np.ndarray, dict]:
    """A 3D volume in closest-canonical (RAS+) orientation, with its geometry.

    Returns float32 (X, Y, Z), or (X, Y, Z, C) when ``channels`` allows a fourth axis
    (a multi-sequence volume as the Medical Segmentation Decathlon ships it), and
    ``{"spacing", "orientation", "original_orientation", "affine"}`` (the canonical
    affine, so volumes can be compared and written back).
    """
    image, canonical, data = _load_canonical(path)
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


def label_slices(labels: np.ndarray, axis: int) -> np.ndarray:
    """Per-slice "has foreground" of a label map; float-stored maps are rounded first."""
    foreground = np.rint(labels) > 0
    other = tuple(a for a in range(3) if a != axis)
    return foreground.any(axis=other)


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """A 2D slice as (H, W) with rows running along the next axis (image convention)."""
    return np.take(volume, index, axis=axis).T
