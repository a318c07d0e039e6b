"""PNG, JPEG and TIFF decoding in 8 and 16 bit, any Pillow colour mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from xaiseg.errors import InputError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_raster(path: str | Path) -> np.ndarray:
    """Return a float32 channel-first array (C, H, W) with the file's own value range."""
    try:
        with Image.open(path) as img:
            img.load()
            array = _to_array(img)
    except Image.DecompressionBombError as err:
        # Pillow refuses images this large to guard against decompression bombs.
        raise InputError(str(path), f"image is too large to decode safely ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(str(path), f"image cannot be decoded ({err})") from err
    array = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return array.astype(np.float32)


def _to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode in ("LA", "RGBA"):
        img = img.convert(img.mode[:-1])  # alpha carries no anatomy
    return np.asarray(img)
