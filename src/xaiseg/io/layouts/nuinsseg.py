"""NuInsSeg as it ships (Kaggle ``ipateam/nuinsseg``): one folder per organ and species
(``human bladder``, ``mouse spleen``, ...), each with ``tissue images/<name>.png``
(512 x 512 H&E patches) and the nucleus masks under the same name in ``mask binary/``
(PNG) or ``label masks modify/`` (TIFF, one value per nucleus; any value above 0 is a
nucleus).

The image-level label comes from the mask (``label_from: mask``: ``positive`` when the
patch holds any nucleus) or from the organ (``label_from: organ``: the organ folder's
name, for example ``human_bladder``, must then be one of the classes). Every organ
folder is one whole-slide image, so the group is the organ (``group_by: organ``) and a
split never shares a slide; labels from the organ need ``group_by: image``, or each
organ would fall in one split only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import IMAGE_SUFFIXES, find_mask, sample_id
from xaiseg.io.readers import load_mask

MASK_FOLDERS = ("mask binary", "label masks modify", "label masks")


def organ_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("tissue images") if p.is_dir()})


def nucleus_mask(organ: Path, image: Path) -> Path:
    for folder in MASK_FOLDERS:
        mask = find_mask(organ / folder, Path(image.name))
        if mask is not None:
            return mask
    raise InputError(str(image), f"no nucleus mask of that name in {list(MASK_FOLDERS)}")


def nuinsseg_layout(
    root: Path,
    *,
    negative: str,
    positive: str,
    label_from: str,
    group_by: str,
) -> pd.DataFrame:
    if label_from not in ("mask", "organ") or group_by not in ("organ", "image"):
        raise InputError(str(root), "nuinsseg: label_from mask or organ, group_by organ or image")
    if label_from == "organ" and group_by == "organ":
        raise InputError(str(root), "nuinsseg: labels from the organ need group_by: image")
    rows = []
    for organ in organ_folders(root):
        images = sorted(
            p for p in (organ / "tissue images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        for image in images:
            mask = nucleus_mask(organ, image)
            sid = sample_id(f"{organ.name}_{image.stem}")
            if label_from == "organ":
                label = sample_id(organ.name)
            else:
                label = positive if load_mask(mask).any() else negative
            rows.append(
                {
                    "sample_id": sid,
                    "image": str(image.relative_to(root)),
                    "label": label,
                    "mask": str(mask.relative_to(root)),
                    "group": sample_id(organ.name) if group_by == "organ" else sid,
                    "split": "",
                }
            )
    return pd.DataFrame(rows)
