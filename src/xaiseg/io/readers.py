"""Pick a reader by file suffix; readers return float32 (C, *spatial): (C, H, W) for
images, (C, X, Y, Z) for volumes (``spatial_dims=3``, NIfTI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xaiseg.errors import InputError
from xaiseg.io.dicom import DICOM_SUFFIXES, Window, read_dicom
from xaiseg.io.nifti import NIFTI_SUFFIXES, read_nifti, read_volume
from xaiseg.io.raster import RASTER_SUFFIXES, read_raster


def file_suffix(path: Path) -> str:
    """The file's kind by its name, or by its DICOM preamble: PACS exports often carry
    no suffix, or a number after the last dot."""
    name = path.name.lower()
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()
    known = (*DICOM_SUFFIXES, *NIFTI_SUFFIXES, *RASTER_SUFFIXES)
    if suffix not in known and _has_dicom_preamble(path):
        return DICOM_SUFFIXES[0]
    return suffix


def _has_dicom_preamble(path: Path) -> bool:
    """PS3.10: 128 bytes of preamble, then the letters DICM."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def load_image(
    path: str | Path,
    dicom_window: Window = None,
    frame: int | None = None,
    spatial_dims: int = 2,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode any supported file to float32 (C, *spatial).

    ``dicom_window`` applies to DICOM; ``frame`` (0-based) picks one frame of a
    multi-frame DICOM, one page of a multi-page TIFF or one time point of a NIfTI time
    series; ``max_pixels`` bounds what a file may hold (checked before decoding).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "file does not exist")
    suffix = file_suffix(p)
    if spatial_dims == 3:
        if suffix not in NIFTI_SUFFIXES:
            raise InputError(str(p), "3D volumes are read from NIfTI files only")
        volume = read_volume(p, channels=True, max_pixels=max_pixels)[0]
        return volume[np.newaxis] if volume.ndim == 3 else np.moveaxis(volume, -1, 0)
    if frame is not None and suffix not in (*DICOM_SUFFIXES, *NIFTI_SUFFIXES, ".tif", ".tiff"):
        raise InputError(str(p), "a frame number applies to DICOM, multi-page TIFF and NIfTI only")
    if suffix in DICOM_SUFFIXES:
        array = read_dicom(p, dicom_window, frame, max_pixels)
    elif suffix in NIFTI_SUFFIXES:
        array = read_nifti(p, frame, max_pixels)
    elif suffix in RASTER_SUFFIXES:
        array = read_raster(p, frame, max_pixels)
    else:
        raise InputError(str(p), f"unsupported file type {suffix!r}")
    if not np.isfinite(array).all():
        raise InputError(str(p), "image contains NaN or infinite values")
    return array


def load_mask(
    path: str | Path,
    spatial_dims: int = 2,
    frame: int | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Load a mask as bool (*spatial): any non-zero value in any channel is foreground.
    ``frame`` picks the mask's frame where the mask file holds as many as its image."""
    image = load_image(path, frame=frame, spatial_dims=spatial_dims, max_pixels=max_pixels)
    return image.max(axis=0) > 0
