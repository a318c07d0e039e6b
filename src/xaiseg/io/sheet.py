"""The sample sheet: read, validate row by row, and resolve paths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from xaiseg.errors import InputError
from xaiseg.provenance import write_text

SCHEMA_PATH = Path(__file__).with_name("sheet.schema.yaml")
COLUMNS = ("sample_id", "image", "label", "mask", "group", "split", "frame")


def read_sheet(
    path: str | Path, classes: Sequence[str], require_files: bool = True
) -> pd.DataFrame:
    """Read and validate a sample sheet; paths come back absolute.

    Every problem found is reported at once, each naming its row (1-based, header
    excluded) so a user can fix the sheet in one pass. With ``require_files=False``
    missing files are left for the caller to quarantine.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "sample sheet does not exist")
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if sheet.empty:
        raise InputError(str(path), "sample sheet has no rows")
    for column in ("mask", "group", "split", "frame"):
        if column not in sheet.columns:
            sheet[column] = ""
    problems = _schema_problems(sheet) + _content_problems(sheet, classes)
    if problems:
        raise InputError(str(path), "invalid sample sheet:\n  " + "\n  ".join(problems))
    base = path.parent
    for column in ("image", "mask"):
        sheet[column] = [str(_resolve(base, p)) if p else "" for p in sheet[column]]
    missing = [
        f"row {i}: {column} file not found: {value}"
        for i, row in _numbered(sheet)
        for column in ("image", "mask")
        if (value := row[column]) and not Path(value).is_file()
    ]
    if missing and require_files:
        raise InputError(str(path), "missing files:\n  " + "\n  ".join(missing))
    sheet.loc[sheet["group"] == "", "group"] = sheet["sample_id"]
    return sheet.reset_index(drop=True)


def _numbered(sheet: pd.DataFrame):
    return ((i + 1, row) for i, (_, row) in enumerate(sheet.iterrows()))


def _schema_problems(sheet: pd.DataFrame) -> list[str]:
    validator = jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA_PATH.read_text()))
    problems = []
    for i, row in _numbered(sheet):
        for err in validator.iter_errors(row.to_dict()):
            field = ".".join(str(p) for p in err.path) or "row"
            problems.append(f"row {i}: {field}: {err.message}")
    return problems


def _content_problems(sheet: pd.DataFrame, classes: Sequence[str]) -> list[str]:
    problems = []
    for i, row in _numbered(sheet):
        if row["label"] not in classes:
            problems.append(
                f"row {i} ({row['sample_id']}): label {row['label']!r} is not one of "
                f"the configured classes {list(classes)}"
            )
    duplicated = sheet["sample_id"][sheet["sample_id"].duplicated()].unique()
    problems += [f"duplicate sample_id {sid!r}" for sid in duplicated]
    return problems


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (base / p).resolve()


def write_sheet(path: str | Path, sheet: pd.DataFrame) -> None:
    columns = [c for c in COLUMNS if c in sheet.columns]
    write_text(path, sheet[columns].to_csv(sep="\t", index=False))
