"""Kvasir-SEG: ``images/<id>.jpg`` with ``masks/<id>.jpg``; every image shows a polyp."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import IMAGE_SUFFIXES, find_mask, sample_id


def kvasir_layout(root: Path, *, positive: str) -> pd.DataFrame:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir():
        raise InputError(str(root), "Kvasir layout needs an images/ folder")
    rows = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask = find_mask(masks_dir, Path(image.name))
        if mask is None:
            raise InputError(str(image), "Kvasir image has no mask in masks/")
        rows.append(
            {
                "sample_id": sample_id(image.stem),
                "image": str(image.relative_to(root)),
                "label": positive,
                "mask": str(mask.relative_to(root)),
                "group": "",
                "split": "",
            }
        )
    return pd.DataFrame(rows)
