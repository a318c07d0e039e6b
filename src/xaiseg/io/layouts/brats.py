"""BraTS as it ships: one folder per case, one NIfTI file per MR sequence and a
multi-class label map, named ``<case>_<sequence>`` (2018 to 2021:
``BraTS2021_00000/BraTS2021_00000_flair.nii.gz``, ``_t1``, ``_t1ce``, ``_t2``, ``_seg``)
or ``<case>-<sequence>`` (2023 on: ``BraTS-GLI-00000-000-t1c.nii.gz``, ``-t1n``,
``-t2f``, ``-t2w``, ``-seg``).

Case folders are found at any depth. ``sequences`` are stacked as channels in the order
given (empty: every sequence of the first case, sorted by name); every case must have
each of them. ``foreground_labels`` turns the label map into the foreground (empty:
any label above 0, "whole tumour"). Slicing and whole volumes: ``volumes.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import DERIVED
from xaiseg.io.layouts.volumes import Case, Channel, is_nifti, nifti_name, volume_rows

SEQUENCE_FILE = re.compile(r"^(?P<case>.+)[_-](?P<sequence>[A-Za-z0-9]+)$")
LABEL_NAMES = ("seg", "label", "mask")


def case_files(folder: Path) -> dict[str, Path]:
    """Sequence name (lower case) -> file, for the NIfTI files directly in ``folder``."""
    files: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if is_nifti(p)):
        match = SEQUENCE_FILE.match(nifti_name(path))
        if match is None:
            raise InputError(str(path), "expected <case>_<sequence>.nii.gz (BraTS naming)")
        sequence = match["sequence"].lower()
        if sequence in files:
            raise InputError(str(path), f"two files for sequence {sequence!r} in {folder.name}")
        files[sequence] = path
    return files


def brats_cases(root: Path, sequences: Sequence[str] = (), skip: Path | None = None) -> list[Case]:
    """Every case folder under ``root``, except those under ``skip`` (derived files)."""
    skip = (skip or root / DERIVED).resolve()
    folders = sorted(
        {p.parent for p in root.rglob("*.nii*") if is_nifti(p) and skip not in p.resolve().parents}
    )
    cases, wanted = [], [s.lower() for s in sequences]
    for folder in folders:
        files = case_files(folder)
        label = next((files.pop(n) for n in LABEL_NAMES if n in files), None)
        if label is None:
            raise InputError(str(folder), f"case {folder.name}: no label map (_seg.nii.gz)")
        wanted = wanted or sorted(files)
        missing = [s for s in wanted if s not in files]
        if missing:
            raise InputError(
                str(folder), f"case {folder.name}: no {missing} sequence; found {sorted(files)}"
            )
        channels = tuple(Channel(files[s], None, s) for s in wanted)
        cases.append(Case(folder.name, channels, label))
    return cases


def brats_layout(
    root: Path,
    *,
    derived_dir: Path | None = None,
    axis: int | None,
    negative: str,
    positive: str,
    sequences: Sequence[str],
    foreground_labels: Sequence[int],
) -> pd.DataFrame:
    cases = brats_cases(root, sequences, derived_dir)
    return volume_rows(cases, root, derived_dir, axis, negative, positive, foreground_labels)
