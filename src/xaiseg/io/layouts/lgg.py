"""Kaggle LGG "kaggle_3m": <patient>/<patient>_<slice>.tif with <...>_mask.tif beside.

Slice numbers are not zero-padded, so slices are sorted numerically. The image-level
label is whether the mask has any foreground; the group is the patient. Patient folders
are found at any depth, so several archives extracted side by side form one dataset.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.readers import load_mask

SLICE = re.compile(r"^(?P<patient>.+)_(?P<slice>\d+)\.tif$")


def lgg_layout(root: Path, *, negative: str, positive: str) -> pd.DataFrame:
    rows = []
    patient_dirs = sorted({image.parent for image in root.rglob("*_mask.tif")})
    for patient_dir in patient_dirs:
        slices = []
        for image in patient_dir.glob("*.tif"):
            match = SLICE.match(image.name)
            if match and not image.name.endswith("_mask.tif"):
                slices.append((int(match["slice"]), image))
        for number, image in sorted(slices):
            mask = image.with_name(f"{image.stem}_mask.tif")
            if not mask.is_file():
                raise InputError(str(image), f"LGG slice has no mask file {mask.name}")
            rows.append(
                {
                    "sample_id": f"{patient_dir.name}_{number}",
                    "image": str(image.relative_to(root)),
                    "label": positive if load_mask(mask).any() else negative,
                    "mask": str(mask.relative_to(root)),
                    "group": patient_dir.name,
                    "split": "",
                }
            )
    return pd.DataFrame(rows)
