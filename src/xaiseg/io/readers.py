"""Pick a reader by file suffix; readers return float32 (C, *spatial): (C, H, W) for
images, (C, X, Y, Z) for volumes (``spatial_dims=3``, NIfTI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xaiseg.errors import InputError
from xaiseg.io.dicom import DICOM_SUFFIXES, Window, read_dicom
from xaiseg.io.nifti import NIFTI_SUFFIXES, read_nifti, read_volume
from xaiseg.io.raster import RASTER_SUFFIXES, read_raster


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def load_image(
    path: str | Path,
    dicom_window: Window = None,
    frame: int | None = None,
    spatial_dims: int = 2,
) -> np.ndarray:
    """Decode any supported file to float32 (C, *spatial).

    ``dicom_window`` and ``frame`` (0-based, for multi-frame files) apply to DICOM.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "file does not exist")
    suffix = _suffix(p)
    if spatial_dims == 3:
        if suffix not in NIFTI_SUFFIXES:
            raise InputError(str(p), "3D volumes are read from NIfTI files only")
        volume = read_volume(p, channels=True)[0]
        return volume[np.newaxis] if volume.ndim == 3 else np.moveaxis(volume, -1, 0)
    if frame is not None and suffix not in DICOM_SUFFIXES:
        raise InputError(str(p), "a frame number applies to multi-frame DICOM only")
    if suffix in DICOM_SUFFIXES:
        array = read_dicom(p, dicom_window, frame)
    elif suffix in NIFTI_SUFFIXES:
        array = read_nifti(p)
    elif suffix in RASTER_SUFFIXES:
        array = read_raster(p)
    else:
        raise InputError(str(p), f"unsupported file type {suffix!r}")
    if not np.isfinite(array).all():
        raise InputError(str(p), "image contains NaN or infinite values")
    return array


def load_mask(path: str | Path, spatial_dims: int = 2) -> np.ndarray:
    """Load a mask as bool (*spatial): any non-zero value in any channel is foreground."""
    return load_image(path, spatial_dims=spatial_dims).max(axis=0) > 0
