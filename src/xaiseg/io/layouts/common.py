"""Helpers shared by the layouts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# Where layouts that derive files (merged masks, NIfTI slices) write them by default;
# the CLI passes the sheet's folder instead.
DERIVED = "_xaiseg"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm"}


def sample_id(name: str) -> str:
    """A sheet-safe id: runs of characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.-")


def find_mask(masks_dir: Path, relative: Path) -> Path | None:
    """The mask with the image's relative path, under any image suffix."""
    for suffix in [relative.suffix, *sorted(IMAGE_SUFFIXES)]:
        candidate = masks_dir / relative.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def merge_masks(masks: Sequence[Path], target: Path) -> Path:
    """One mask file for several: the file itself if only one, else their union at ``target``."""
    from xaiseg.io.readers import load_mask

    unique = sorted(set(masks))
    if len(unique) == 1:
        return unique[0]
    union = np.logical_or.reduce([load_mask(m) for m in unique])
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(union.astype(np.uint8) * 255).save(target)
    return target
