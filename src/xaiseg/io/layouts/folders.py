"""One folder per class (``root/<class>/*``), optional ``root/masks/<same name>``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xaiseg.io.layouts.common import IMAGE_SUFFIXES, find_mask, sample_id

MASKS = "masks"


def folders_layout(root: Path) -> pd.DataFrame:
    rows = []
    masks_dir = root / MASKS
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != MASKS):
        for image in sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = (
                find_mask(masks_dir, image.relative_to(class_dir)) if masks_dir.is_dir() else None
            )
            rows.append(
                {
                    "sample_id": sample_id(f"{class_dir.name}_{image.stem}"),
                    "image": str(image.relative_to(root)),
                    "label": class_dir.name,
                    "mask": str(mask.relative_to(root)) if mask else "",
                    "group": "",
                    "split": "",
                }
            )
    return pd.DataFrame(rows)
