"""DICOM pixel decoding with the modality LUT and MONOCHROME1 inversion applied.

Patient-identifying values are never read into anything we return or log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from xaiseg.errors import InputError

DICOM_SUFFIXES = (".dcm", ".dicom")


def read_dicom(path: str | Path) -> np.ndarray:
    """Return a float32 channel-first array (C, H, W) of modality values."""
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise InputError(str(path), f"not a readable DICOM file ({err})") from err
    if "PixelData" not in ds:
        raise InputError(str(path), "DICOM file has no pixel data")
    try:
        pixels = ds.pixel_array
    except Exception as err:  # decoders raise many types; all mean broken pixel data
        raise InputError(str(path), f"DICOM pixel data cannot be decoded ({err})") from err
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise InputError(str(path), f"multi-frame DICOM ({frames} frames) is not a 2D image")
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric.startswith("MONOCHROME"):
        values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)
        if photometric == "MONOCHROME1":
            # MONOCHROME1 means high values are dark: flip so bright is high everywhere.
            values = values.max() + values.min() - values
        return values[np.newaxis]
    return np.moveaxis(np.asarray(pixels, dtype=np.float32), -1, 0)
