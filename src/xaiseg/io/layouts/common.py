"""Helpers shared by the layouts."""

from __future__ import annotations

import re
from pathlib import Path

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
