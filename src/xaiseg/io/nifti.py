"""NIfTI decoding via nibabel, reoriented to the closest canonical (RAS+) orientation."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from xaiseg.errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_nifti(path: str | Path) -> np.ndarray:
    """Return a 2D image stored as NIfTI as float32 (C, H, W).

    A 2D image is a volume with one slice; rows are the volume's second axis so that
    an image written as ``array.T[..., None]`` reads back as ``array``.
    """
    try:
        volume = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asarray(volume.dataobj, dtype=np.float32)
    except Exception as err:  # nibabel raises many types for a damaged file
        raise InputError(str(path), f"NIfTI file cannot be read ({err})") from err
    data = np.squeeze(data)
    if data.ndim != 2:
        raise InputError(str(path), f"expected a 2D NIfTI image, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise InputError(str(path), "NIfTI image contains NaN or infinite values")
    return data.T[np.newaxis]


def write_nifti_2d(path: str | Path, image: np.ndarray) -> None:
    """Write a 2D (H, W) array as a one-slice NIfTI volume with an identity affine."""
    nib.save(nib.Nifti1Image(np.ascontiguousarray(image.T[..., np.newaxis]), np.eye(4)), str(path))
