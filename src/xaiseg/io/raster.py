"""PNG, JPEG and TIFF decoding in 8 and 16 bit, any Pillow colour mode, each decoded to
what it holds or refused with the reason: never fewer bits, ink for light, or one
page of many without a word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from xaiseg.errors import InputError
from xaiseg.io.budget import check_pixels

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
# Colour models whose numbers are not light: Pillow converts them to RGB exactly.
TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV")


def read_raster(
    path: str | Path, frame: int | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Return a float32 channel-first array (C, H, W) with the file's own value range.

    ``frame`` (0-based) picks one page of a multi-page TIFF, which is refused without
    it; ``max_pixels`` bounds width x height x pages, checked before decoding."""
    try:
        with Image.open(path) as img:
            pages = getattr(img, "n_frames", 1)
            check_pixels(path, img.size[0] * img.size[1] * pages, max_pixels, "pixels")
            if frame is None and pages > 1:
                raise InputError(
                    str(path),
                    f"multi-page image ({pages} pages): name the page in the sheet's frame"
                    " column (0-based)",
                )
            if frame is not None:
                if not 0 <= frame < pages:
                    raise InputError(str(path), f"page {frame} out of range (the file has {pages})")
                img.seek(frame)
            if _wider_than_pillow(img):
                array = _tiff_page(path, frame or 0)
            else:
                img.load()
                array = _to_array(img, path)
    except Image.DecompressionBombError as err:
        # Pillow refuses images this large to guard against decompression bombs.
        raise InputError(str(path), f"image is too large to decode safely ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(str(path), f"image cannot be decoded ({err})") from err
    array = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return array.astype(np.float32)


def _wider_than_pillow(img: Image.Image) -> bool:
    """A colour image of more than 8 bits per sample, which Pillow cuts to 8."""
    if img.mode not in ("RGB", "RGBA", "CMYK", "LA"):
        return False
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return img.format == "PNG" and _png_bit_depth(img) > 8


def _png_bit_depth(img: Image.Image) -> int:
    """The IHDR bit depth (byte 24 of the file), which Pillow does not report."""
    handle = img.fp
    position = handle.tell()
    handle.seek(24)
    depth = handle.read(1)
    handle.seek(position)
    if depth == b"\x10":
        raise InputError(
            img.filename,
            "16-bit colour PNG: the decoder keeps 8 bits of each sample; save it as a"
            " 16-bit TIFF (or as 16-bit grey) to keep what it holds",
        )
    return depth[0] if depth else 8


def _tiff_page(path: str | Path, page: int) -> np.ndarray:
    """One page of a TIFF at its own bit depth (tifffile)."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        current = tiff.pages[page]
        photometric = current.photometric.name
        if photometric not in ("RGB", "MINISBLACK"):
            raise InputError(
                str(path), f"{current.bitspersample}-bit TIFF in colour model {photometric}:"
                " convert it to RGB or grey",
            )  # fmt: skip
        array = current.asarray()
    return array[..., :3] if array.ndim == 3 and array.shape[-1] == 4 else array


def _to_array(img: Image.Image, path: str | Path) -> np.ndarray:
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode in TO_RGB:
        img = img.convert("RGB")
    if img.mode in ("LA", "RGBA"):
        img = img.convert(img.mode[:-1])  # alpha carries no anatomy
    array = np.asarray(img)
    if array.dtype.kind not in "uif":
        raise InputError(str(path), f"image mode {img.mode!r} cannot be read as numbers")
    return array
