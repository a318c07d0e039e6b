"""CheXpert: ``train.csv``/``valid.csv`` with a ``Path`` column and 14 observations.

One observation becomes the image-level label. Its values are 1 (positive), 0
(negative), -1 (uncertain) or blank (not mentioned, read as negative, as the CheXpert
authors do). Uncertain labels follow a policy from the CheXpert paper: ``ones``
(U-Ones), ``zeros`` (U-Zeros) or ``ignore`` (drop the image). The group is the patient
(``patientNNNNN`` in the path); ``valid.csv`` rows keep the official validation split.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError
from xaiseg.io.layouts.common import sample_id

OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
POLICIES = ("ones", "zeros", "ignore")
PATIENT = re.compile(r"(patient\d+)")


def chexpert_layout(
    root: Path,
    *,
    observation: str,
    uncertain: str,
    negative: str,
    positive: str,
) -> pd.DataFrame:
    if observation not in OBSERVATIONS:
        raise InputError(
            observation, f"not a CheXpert observation; choose one of {list(OBSERVATIONS)}"
        )
    if uncertain not in POLICIES:
        raise InputError(uncertain, f"unknown uncertainty policy; choose one of {list(POLICIES)}")
    frames = []
    for csv, split in (("train.csv", ""), ("valid.csv", "val")):
        if (root / csv).is_file():
            frames.append(_read(root / csv, observation, split))
    if not frames:
        raise InputError(str(root), "CheXpert layout needs train.csv and/or valid.csv")
    table = pd.concat(frames, ignore_index=True)
    if uncertain == "ignore":
        table = table[table["value"] != -1]
    target = {"ones": 1, "zeros": 0, "ignore": 0}[uncertain]
    value = table["value"].replace(-1, target)
    return pd.DataFrame(
        {
            "sample_id": [sample_id(p.split("/", 1)[-1].replace("/", "_")) for p in table["Path"]],
            "image": [_relative(root, p) for p in table["Path"]],
            "label": [positive if v == 1 else negative for v in value],
            "mask": "",
            "group": [m[1] if (m := PATIENT.search(p)) else "" for p in table["Path"]],
            "split": table["split"].to_numpy(),
        }
    )


def _read(csv: Path, observation: str, split: str) -> pd.DataFrame:
    table = pd.read_csv(csv)
    for column in ("Path", observation):
        if column not in table.columns:
            raise InputError(str(csv), f"missing column {column!r}")
    values = pd.to_numeric(table[observation], errors="coerce").fillna(0)
    bad = sorted(set(values) - {-1, 0, 1})
    if bad:
        raise InputError(
            str(csv), f"{observation!r} holds values {bad}; expected 1, 0, -1 or blank"
        )
    return pd.DataFrame({"Path": table["Path"], "value": values.astype(int), "split": split})


def _relative(root: Path, path: str) -> str:
    """CSV paths start with the dataset folder's own name (``CheXpert-v1.0-small/...``)."""
    parts = Path(path).parts
    return str(Path(*parts[1:])) if parts and parts[0] == root.name else path
