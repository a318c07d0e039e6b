"""The sample sheet: read, check every row, resolve and confine its paths.

The checks need only the standard library, jsonschema and PyYAML (both come with
Snakemake), so the workflow runs them before its first job, and preprocessing runs
the same ones again. Every problem is collected, never the first one alone; each names
its row as a spreadsheet shows it (the header is row 1), its ``sample_id``, the file as
written in the sheet, and the reason.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xaiseg.errors import InputError

SCHEMA_PATH = Path(__file__).with_name("sheet.schema.yaml")
COLUMNS = ("sample_id", "image", "label", "mask", "group", "split", "frame")
REQUIRED = ("sample_id", "image", "label")


@dataclass(frozen=True)
class SheetProblem:
    row: int | None  # spreadsheet row (header = 1); None: the sheet as a whole
    sample_id: str
    file: str  # as written in the sheet (relative to its folder), or ""
    reason: str
    quarantinable: bool = False  # a file that is missing or cannot be decoded

    def describe(self, strict: bool = False) -> str:
        where = "sheet" if self.row is None else f"row {self.row} ({self.sample_id})"
        file = path_token(self.file) if strict and self.file else self.file
        return f"{where}: {file + ': ' if file else ''}{self.reason}"


def path_token(value: str) -> str:
    """What ``privacy: strict`` writes instead of a path: a short hash."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16] if value else ""


def sheet_error(path: Path, problems: Iterable[SheetProblem], strict: bool = False) -> InputError:
    problems = list(problems)
    listing = "\n  ".join(p.describe(strict) for p in problems)
    name = path.name if strict else str(path)
    return InputError(name, f"{len(problems)} problem(s) in the sample sheet:\n  {listing}")


def load_rows(path: str | Path) -> list[dict[str, str]]:
    """The sheet's rows as dicts (every column present); fatal problems raise at once."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "sample sheet does not exist")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise InputError(str(path), "sample sheet is empty (no header, no rows)")
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(
            str(path), f"sample sheet lacks column(s) {missing}; it has {header} (tab-separated?)"
        )
    rows = [{c: (row.get(c) or "").strip() for c in {*COLUMNS, *header}} for row in reader]
    if not rows:
        raise InputError(str(path), "sample sheet has a header but no rows")
    return rows


def check_sheet(
    path: str | Path,
    classes: Sequence[str],
    roots: Sequence[str | Path] = (),
) -> tuple[list[dict[str, str]], list[SheetProblem]]:
    """Rows with absolute, confined paths (``image_path``/``mask_path``), and every
    problem found. Files must lie inside the sheet's folder or one of ``roots``,
    symlinks resolved, so a sheet cannot read ``../../etc/passwd``.

    Checked column by column, so that a sheet of 100,000 rows takes about a second:
    the schema's simple keywords screen every row and only the rows that fail them go
    through jsonschema for its message; each folder is resolved and listed once."""
    path = Path(path)
    rows = load_rows(path)
    folders = _Folders([path.parent, *roots])
    problems = _schema_problems(rows)
    seen: set[str] = set()
    known = set(classes)
    for number, row in enumerate(rows, start=2):
        row["row"] = str(number)
        sid = row["sample_id"]
        if sid in seen:
            problems.append(SheetProblem(number, sid, "", f"duplicate sample_id {sid!r}"))
        seen.add(sid)
        if row["label"] and row["label"] not in known:
            reason = f"label {row['label']!r} is not one of the classes {list(classes)}"
            problems.append(SheetProblem(number, sid, "", reason))
        for column in ("image", "mask"):
            row[f"{column}_path"] = ""
            if row[column]:
                problems += _path_problems(row, column, number, path.parent, folders)
    present = sorted({r["label"] for r in rows if r["label"] in known})
    if len(present) < 2:
        reason = (
            f"only class(es) {present} occur: image-level training needs at least two of "
            f"{list(classes)}"
        )
        problems.append(SheetProblem(None, "", "", reason))
    return rows, problems


class _Folders:
    """Each folder resolved (symlinks followed) and listed once: a file is then a set
    lookup, and whether it lies inside a permitted root is decided once per folder."""

    def __init__(self, roots: Sequence[str | Path]) -> None:
        self.roots = [os.path.realpath(r) for r in roots]
        self.cache: dict[str, tuple[str, bool, dict[str, str]]] = {}

    def inside(self, real: str) -> bool:
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)

    def locate(self, full: str) -> tuple[str, bool, bool]:
        """(resolved path, inside a permitted root, is a file)."""
        folder, name = os.path.split(full)
        if name in ("", ".", ".."):
            return self._one(full)
        if folder not in self.cache:
            real = os.path.realpath(folder)
            self.cache[folder] = (real, self.inside(real), _listing(real))
        real, inside, entries = self.cache[folder]
        kind = entries.get(name)
        if kind == "link":  # the link's target decides
            return self._one(full)
        return os.path.join(real, name), inside, kind == "file"

    def _one(self, full: str) -> tuple[str, bool, bool]:
        real = os.path.realpath(full)
        return real, self.inside(real), os.path.isfile(real)


def _listing(folder: str) -> dict[str, str]:
    """Entry name -> "file", "link" or "other"; empty when the folder cannot be read."""
    entries = {}
    try:
        with os.scandir(folder) as listing:
            for entry in listing:
                kind = "file" if entry.is_file(follow_symlinks=False) else "other"
                entries[entry.name] = "link" if entry.is_symlink() else kind
    except OSError:
        pass
    return entries


def _path_problems(row, column, number, base: Path, folders: _Folders) -> list[SheetProblem]:
    value = row[column]
    resolved, inside, is_file = folders.locate(os.path.join(base, value))
    if not inside:
        reason = (
            f"{column} path leaves the sheet's folder (and every data.roots entry); "
            "add its folder to data.roots if it is meant"
        )
        return [SheetProblem(number, row["sample_id"], value, reason)]
    row[f"{column}_path"] = resolved
    if not is_file:
        return [SheetProblem(number, row["sample_id"], value, f"{column} file not found", True)]
    return []


def _schema_problems(rows: list[dict[str, str]]) -> list[SheetProblem]:
    import jsonschema
    import yaml

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for number in _suspect_rows(rows, schema):
        row = rows[number - 2]
        values = {k: row[k] for k in COLUMNS}
        for err in validator.iter_errors(values):
            field = ".".join(str(p) for p in err.path) or "row"
            problems.append(SheetProblem(number, row["sample_id"], "", f"{field}: {err.message}"))
    return problems


SCREENED = {"type", "pattern", "enum", "minLength", "maxLength", "description"}


def _suspect_rows(rows: list[dict[str, str]], schema: dict) -> list[int]:
    """Sheet row numbers that may break the schema, found column by column with its
    simple keywords; a keyword not screened here makes every row a suspect."""
    suspects: set[int] = set()
    for column, spec in schema.get("properties", {}).items():
        if set(spec) - SCREENED or spec.get("type", "string") != "string":
            return list(range(2, len(rows) + 2))
        values = [row.get(column, "") for row in rows]
        tests = []
        if "pattern" in spec:
            tests.append(re.compile(spec["pattern"]).search)
        if "enum" in spec:
            tests.append(set(spec["enum"]).__contains__)
        low, high = spec.get("minLength", 0), spec.get("maxLength")
        if low or high is not None:
            tests.append(lambda v, lo=low, hi=high: lo <= len(v) and (hi is None or len(v) <= hi))
        for test in tests:
            suspects.update(i + 2 for i, value in enumerate(values) if not test(value))
    return sorted(suspects)


def read_sheet(
    path: str | Path,
    classes: Sequence[str],
    require_files: bool = True,
    roots: Sequence[str | Path] = (),
):
    """Check a sheet and return it as a DataFrame with absolute paths; any problem
    (missing files too, unless ``require_files`` is False) raises, all named at once."""
    import pandas as pd

    path = Path(path)
    rows, problems = check_sheet(path, classes, roots)
    if not require_files:
        problems = [p for p in problems if not p.quarantinable]
    if problems:
        raise sheet_error(path, problems)
    sheet = pd.DataFrame(rows)
    for column in ("image", "mask"):
        sheet[column] = sheet[f"{column}_path"]
    sheet.loc[sheet["group"] == "", "group"] = sheet["sample_id"]
    return sheet[[*COLUMNS, "row"]].reset_index(drop=True)


def write_sheet(path: str | Path, sheet) -> None:
    from xaiseg.provenance import write_text

    columns = [c for c in COLUMNS if c in sheet.columns]
    write_text(path, sheet[columns].to_csv(sep="\t", index=False))
