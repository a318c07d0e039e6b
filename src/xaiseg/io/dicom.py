"""DICOM decoding: every transfer syntax pydicom + the pylibjpeg plugins can read.

Order of operations follows the DICOM standard's display pipeline: modality LUT
(rescale slope/intercept), then VOI (the file's VOI LUT or window, or one given in the
config), then MONOCHROME1 inversion. PALETTE COLOR goes through its colour LUT; YBR is
converted to RGB by the decoders. Patient-identifying values are never read into
anything returned or logged: errors name the file only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from xaiseg.errors import InputError
from xaiseg.io.budget import check_pixels

DICOM_SUFFIXES = (".dcm", ".dicom")

# A window: None keeps modality values, "file" uses the file's own VOI, or (centre, width).
Window = None | str | Sequence[float]


def decode_dicom(
    path: str | Path, window: Window = None, max_pixels: int | None = None
) -> np.ndarray:
    """Return every frame as float32 (F, C, H, W)."""
    ds = _read(path)
    try:
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        held = int(getattr(ds, "Rows", 0) or 0) * int(getattr(ds, "Columns", 0) or 0) * frames
    except (TypeError, ValueError) as err:
        raise InputError(str(path), f"DICOM image size unreadable ({_short(err)})") from err
    check_pixels(path, held, max_pixels, "pixels")
    try:
        pixels = ds.pixel_array
    except Exception as err:  # decoders raise many types; all mean broken pixel data
        raise InputError(str(path), f"DICOM pixel data cannot be decoded ({_short(err)})") from err
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if frames == 1:
        pixels = pixels[np.newaxis]
    if photometric == "PALETTE COLOR":
        values = np.asarray(apply_color_lut(pixels, ds), dtype=np.float32)
    elif samples == 1:
        values = _grey(pixels, ds, photometric, window)[..., np.newaxis]
    else:
        values = np.asarray(pixels, dtype=np.float32)
    if values.ndim != 4:
        raise InputError(str(path), f"unexpected DICOM pixel array shape {pixels.shape}")
    return np.moveaxis(values, -1, 1)


def read_dicom(
    path: str | Path,
    window: Window = None,
    frame: int | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """One frame of a DICOM as float32 (C, H, W); ``frame`` is required for multi-frame."""
    frames = decode_dicom(path, window, max_pixels)
    if frame is not None:
        if not 0 <= frame < len(frames):
            raise InputError(str(path), f"frame {frame} out of range (the file has {len(frames)})")
        return frames[frame]
    if len(frames) > 1:
        raise InputError(
            str(path), f"multi-frame DICOM ({len(frames)} frames): give a frame number or slice it"
        )
    return frames[0]


def _read(path: str | Path) -> pydicom.Dataset:
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        ds = _read_without_meta(path)
    except (OSError, ValueError, EOFError, KeyError, TypeError) as err:
        raise InputError(str(path), f"not a readable DICOM file ({_short(err)})") from err
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        kind = str(getattr(ds, "SOPClassUID", "unknown").name if "SOPClassUID" in ds else "unknown")
        raise InputError(str(path), f"DICOM file has no pixel data (SOP class: {kind})")
    return ds


def _read_without_meta(path: str | Path) -> pydicom.Dataset:
    """Older files lack the preamble and file meta; read them if they hold an image.

    The transfer syntax is then implied by how the dataset itself is encoded, which is
    only knowable for uncompressed data.
    """
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as err:
        raise InputError(str(path), f"not a readable DICOM file ({_short(err)})") from err
    if "Rows" not in ds or "SOPClassUID" not in ds:
        raise InputError(str(path), "not a DICOM image (no file meta header and no image tags)")
    if "TransferSyntaxUID" not in ds.file_meta:
        if ds.original_encoding[1]:
            syntax = ImplicitVRLittleEndian if ds.original_encoding[0] else ExplicitVRLittleEndian
        else:
            syntax = ExplicitVRBigEndian
        ds.file_meta.TransferSyntaxUID = syntax
    return ds


def _grey(pixels: np.ndarray, ds: pydicom.Dataset, photometric: str, window: Window) -> np.ndarray:
    values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)
    if window == "file":
        values = np.asarray(apply_voi_lut(values, ds, prefer_lut=True), dtype=np.float32)
    elif window is not None:
        values = apply_window(values, float(window[0]), float(window[1]))
    if photometric == "MONOCHROME1":
        # High values are dark in MONOCHROME1: flip so bright is high everywhere.
        low, high = float(values.min()), float(values.max())
        values = (high + low) - values
    return values


def apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 linear window onto [0, 1]."""
    if width < 1:
        raise ValueError(f"window width must be >= 1, got {width}")
    scaled = ((values - (center - 0.5)) / (width - 1)) + 0.5
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
