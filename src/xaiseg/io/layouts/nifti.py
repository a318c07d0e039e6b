"""NIfTI volumes cut into 2D slices: ``<case>.nii.gz`` beside ``<case>_{label,seg,mask}``,
or the nnU-Net/MSD layout ``imagesTr/<case>_0000.nii.gz`` with ``labelsTr/<case>.nii.gz``.

Slices are written as one-slice NIfTI files under ``derived_dir/slices`` (a dataset
conversion, as in nnU-Net), labelled by whether the label map has foreground in that
slice; the group is the volume, so a split never cuts a patient. Each volume's spacing
and orientation go to ``volumes.json`` beside the slices.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import DERIVED, sample_id
from xaiseg.io.nifti import label_slices, read_volume, take_slice, write_nifti_2d
from xaiseg.provenance import write_json

LABEL_SUFFIX = re.compile(r"_(label|seg|mask)$")


def _name(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def volume_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    if (root / "imagesTr").is_dir():
        pairs = []
        for image in sorted((root / "imagesTr").glob("*.nii*")):
            case = re.sub(r"_\d{4}$", "", _name(image))
            label = next((root / "labelsTr").glob(f"{case}.nii*"), None)
            if label is None:
                raise InputError(str(image), f"no label volume labelsTr/{case}.nii.gz")
            pairs.append((case, image, label))
        return pairs
    volumes = {_name(p): p for p in root.glob("*.nii*")}
    labels = {LABEL_SUFFIX.sub("", n): p for n, p in volumes.items() if LABEL_SUFFIX.search(n)}
    images = {n: p for n, p in volumes.items() if not LABEL_SUFFIX.search(n)}
    missing = sorted(set(images) - set(labels))
    if missing:
        raise InputError(
            str(images[missing[0]]), "NIfTI volume has no _label/_seg/_mask volume beside it"
        )
    return [(case, images[case], labels[case]) for case in sorted(images)]


def nifti_layout(
    root: Path,
    derived_dir: Path | None = None,
    axis: int = 2,
    negative: str = "normal",
    positive: str = "lesion",
) -> pd.DataFrame:
    slices_dir = Path(derived_dir or root / DERIVED) / "slices"
    rows, geometry = [], {}
    for case, image_path, label_path in volume_pairs(root):
        image, geometry[case] = read_volume(image_path)
        labels, _ = read_volume(label_path)
        if labels.shape != image.shape:
            raise InputError(
                str(label_path), f"label shape {labels.shape} differs from image {image.shape}"
            )
        has_foreground = label_slices(labels, axis)
        for index in range(image.shape[axis]):
            sid = sample_id(f"{case}_{index:04d}")
            image_file, mask_file = slices_dir / f"{sid}.nii.gz", slices_dir / f"{sid}_mask.nii.gz"
            slices_dir.mkdir(parents=True, exist_ok=True)
            write_nifti_2d(image_file, take_slice(image, axis, index))
            write_nifti_2d(
                mask_file, (np.rint(take_slice(labels, axis, index)) > 0).astype(np.uint8)
            )
            rows.append(
                {
                    "sample_id": sid,
                    "image": str(image_file.resolve()),
                    "label": positive if has_foreground[index] else negative,
                    "mask": str(mask_file.resolve()),
                    "group": sample_id(case),
                    "split": "",
                }
            )
    write_json(slices_dir / "volumes.json", {"axis": axis, "volumes": geometry})
    return pd.DataFrame(rows)
