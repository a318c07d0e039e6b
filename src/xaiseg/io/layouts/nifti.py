"""NIfTI volumes: ``<case>.nii.gz`` beside ``<case>_{label,seg,mask}.nii.gz``, or the
nnU-Net / Medical Segmentation Decathlon layout (``imagesTr``, ``labelsTr``: read by
the ``decathlon`` layout). Cut into 2D slices along ``axis``, or kept whole for the 3D
path (``axis: null``); see ``volumes.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.decathlon import decathlon_cases
from xaiseg.io.layouts.volumes import Case, Channel, is_nifti, nifti_name, volume_rows

LABEL_SUFFIX = re.compile(r"_(label|seg|mask)$")


def flat_cases(root: Path) -> list[Case]:
    volumes = {nifti_name(p): p for p in root.iterdir() if is_nifti(p)}
    labels = {LABEL_SUFFIX.sub("", n): p for n, p in volumes.items() if LABEL_SUFFIX.search(n)}
    images = {n: p for n, p in volumes.items() if not LABEL_SUFFIX.search(n)}
    missing = sorted(set(images) - set(labels))
    if missing:
        raise InputError(
            str(images[missing[0]]), "NIfTI volume has no _label/_seg/_mask volume beside it"
        )
    return [Case(case, (Channel(images[case]),), labels[case]) for case in sorted(images)]


def nifti_layout(
    root: Path,
    *,
    derived_dir: Path | None = None,
    axis: int | None,
    negative: str,
    positive: str,
    sequences: Sequence[str],
    foreground_labels: Sequence[int],
) -> pd.DataFrame:
    cases = decathlon_cases(root, sequences) if (root / "imagesTr").is_dir() else flat_cases(root)
    return volume_rows(cases, root, derived_dir, axis, negative, positive, foreground_labels)
