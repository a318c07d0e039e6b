"""Medical Segmentation Decathlon and nnU-Net v2 raw datasets: ``imagesTr/`` and
``labelsTr/`` with ``dataset.json``.

The Decathlon ships each case as one 4D file (``imagesTr/BRATS_001.nii.gz``, channels
on the fourth axis, named by ``modality`` in ``dataset.json``); nnU-Net v2 as one 3D file
per channel (``imagesTr/<case>_0000.nii.gz``, named by ``channel_names``).
``sequences`` picks channels by those names, in the order given; empty keeps every
channel in file order. Slicing and whole volumes: ``volumes.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.volumes import Case, Channel, is_nifti, nifti_name, volume_rows

CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<index>\d{4})$")


def channel_names(root: Path) -> list[str]:
    """The channel names of ``dataset.json`` in channel order; none without the file."""
    path = root / "dataset.json"
    if not path.is_file():
        return []
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(str(path), f"not valid JSON ({err})") from err
    names = meta.get("channel_names") or meta.get("modality") or {}
    return [str(names[key]) for key in sorted(names, key=int)]


def chosen_channels(root: Path, sequences: Sequence[str]) -> list[tuple[int, str]] | None:
    """(index, name) of each named sequence, in the order named; None: every channel."""
    if not sequences:
        return None
    names = channel_names(root)
    if not names:
        raise InputError(str(root / "dataset.json"), "sequences are named; no file names channels")
    lower = [n.lower() for n in names]
    chosen = []
    for sequence in sequences:
        if sequence.lower() not in lower:
            where = str(root / "dataset.json")
            raise InputError(where, f"no channel {sequence!r}; channels: {names}")
        chosen.append((lower.index(sequence.lower()), sequence))
    return chosen


def _files_by_case(images_dir: Path) -> dict[str, dict[int | None, Path]]:
    by_case: dict[str, dict[int | None, Path]] = {}
    for path in sorted(p for p in images_dir.iterdir() if is_nifti(p)):
        match = CHANNEL_FILE.match(nifti_name(path))
        case, index = (match["case"], int(match["index"])) if match else (nifti_name(path), None)
        by_case.setdefault(case, {})[index] = path
    return by_case


def _label_file(root: Path, case: str, first: Path) -> Path:
    for suffix in (".nii.gz", ".nii"):
        label = root / "labelsTr" / f"{case}{suffix}"
        if label.is_file():
            return label
    raise InputError(str(first), f"case {case}: no label volume labelsTr/{case}.nii.gz")


def decathlon_cases(root: Path, sequences: Sequence[str] = ()) -> list[Case]:
    chosen = chosen_channels(root, sequences)
    names = channel_names(root)
    cases, reference = [], None
    for case, found in sorted(_files_by_case(root / "imagesTr").items()):
        first = next(iter(found.values()))
        if None in found and len(found) > 1:
            raise InputError(str(first), f"case {case}: both a 4D file and per-channel files")
        if None in found:
            picks = [Channel(first, i, n) for i, n in chosen] if chosen else [Channel(first)]
        else:
            wanted = chosen or [(i, names[i] if i < len(names) else "") for i in sorted(found)]
            reference = reference or [i for i, _ in wanted]
            missing = [(i, n) for i, n in wanted if i not in found]
            if missing or (not chosen and [i for i, _ in wanted] != reference):
                i, n = missing[0] if missing else (reference[0], "")
                problem = f"case {case}: missing channel file {case}_{i:04d}.nii.gz {n}"
                raise InputError(str(first), problem.strip())
            picks = [Channel(found[i], None, n) for i, n in wanted]
        cases.append(Case(case, tuple(picks), _label_file(root, case, first)))
    return cases


def decathlon_layout(
    root: Path,
    *,
    derived_dir: Path | None = None,
    axis: int | None,
    negative: str,
    positive: str,
    sequences: Sequence[str],
    foreground_labels: Sequence[int],
) -> pd.DataFrame:
    if not (root / "imagesTr").is_dir():
        raise InputError(str(root), "no imagesTr/ folder (Decathlon / nnU-Net layout)")
    cases = decathlon_cases(root, sequences)
    return volume_rows(cases, root, derived_dir, axis, negative, positive, foreground_labels)
