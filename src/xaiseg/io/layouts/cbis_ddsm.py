"""CBIS-DDSM: TCIA's DICOM tree plus the ``*_case_description_*_set.csv`` files.

The CSVs' file paths do not match the download (their UID folders differ from TCIA's
date/series folders), but their first component, e.g. ``Mass-Training_P_00001_LEFT_CC``
and ``..._1`` for its first ROI, is the folder name. Rows are joined on that. An ROI
folder holds the cropped lesion and the mask; the mask is the one with the full image's
size. All abnormalities of one image are merged into one mask (written to
``derived_dir/merged_masks``), and the image is labelled malignant if any of them is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pydicom

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import DERIVED, merge_masks, sample_id

PATH_COLUMNS = ("image file path", "ROI mask file path")


def _folder_dicoms(root: Path, csv_path: str, csv: Path) -> list[Path]:
    folder = root / csv_path.strip().split("/")[0]
    files = sorted(folder.rglob("*.dcm")) if folder.is_dir() else []
    if not files:
        raise InputError(str(csv), f"no DICOM under {folder.name}/ for {csv_path.strip()!r}")
    return files


def _size(path: Path) -> tuple[int, int]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return int(ds.Rows), int(ds.Columns)


def cbis_ddsm_layout(
    root: Path,
    *,
    derived_dir: Path | None = None,
    negative: str,
    positive: str,
) -> pd.DataFrame:
    merged_dir = Path(derived_dir or root / DERIVED) / "merged_masks"
    tables = sorted(root.glob("*_case_description_*set.csv"))
    if not tables:
        raise InputError(str(root), "CBIS-DDSM layout needs the *_case_description_*_set.csv files")
    images: dict[str, dict] = {}
    for csv in tables:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        missing = [c for c in ("patient_id", "pathology", *PATH_COLUMNS) if c not in table.columns]
        if missing:
            raise InputError(str(csv), f"missing columns {missing}")
        split = "test" if "test" in csv.name else ""
        for record in table.to_dict("records"):
            full = _folder_dicoms(root, record["image file path"], csv)[0]
            rois = _folder_dicoms(root, record["ROI mask file path"], csv)
            mask = [p for p in rois if _size(p) == _size(full)]
            if not mask:
                raise InputError(str(rois[0].parent), "no ROI mask with the full image's size")
            entry = images.setdefault(
                str(full),
                {
                    "full": full,
                    "masks": [],
                    "malignant": False,
                    "group": record["patient_id"],
                    "split": split,
                },
            )
            entry["masks"].append(mask[0])
            entry["malignant"] |= record["pathology"].strip().upper() == "MALIGNANT"
    rows = []
    for entry in images.values():
        name = sample_id(entry["full"].relative_to(root).parts[0])
        rows.append(
            {
                "sample_id": name,
                "image": str(entry["full"].relative_to(root)),
                "label": positive if entry["malignant"] else negative,
                "mask": str(merge_masks(entry["masks"], merged_dir / f"{name}_mask.png").resolve()),
                "group": entry["group"],
                "split": entry["split"],
            }
        )
    return pd.DataFrame(rows).sort_values("sample_id", ignore_index=True)
