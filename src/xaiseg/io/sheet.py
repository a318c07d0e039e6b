"""The sample sheet: read, check every row, resolve and confine its paths.

The checks need only the standard library, jsonschema and PyYAML (both come with
Snakemake), so the workflow runs them before its first job, and preprocessing runs
the same ones again. Every problem is collected, never the first one alone; each names
its row as a spreadsheet shows it (the header is row 1), its ``sample_id``, the file as
written in the sheet, and the reason.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xaiseg.errors import InputError

if TYPE_CHECKING:
    from xaiseg.settings import WorkflowSettings

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


TOKEN = re.compile(r"sha256:[0-9a-f]{16}")


def path_token(value: str) -> str:
    """What ``privacy: strict`` writes instead of a path: a short hash (a token stays
    itself, so a value hashed early is not hashed again)."""
    if not value or TOKEN.fullmatch(value):
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


def sheet_error(path: Path, problems: Iterable[SheetProblem], strict: bool = False) -> InputError:
    problems = list(problems)
    listing = "\n  ".join(p.describe(strict) for p in problems)
    name = path.name if strict else str(path)
    return InputError(name, f"{len(problems)} problem(s) in the sample sheet:\n  {listing}")


def load_rows(path: str | Path) -> list[dict[str, str]]:
    """The sheet's rows as dicts (every column present); fatal problems raise at once.

    Cells are literal text, as TSV defines them: a double quote is a character, never
    the start of a quoted field that could swallow the rows after it. Every non-blank
    line is one row, and a row with more cells than the header is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "sample sheet does not exist")
    lines = read_tsv_lines(path, "sample sheet")
    if not lines:
        raise InputError(str(path), "sample sheet is empty (no header, no rows)")
    header = [cell.strip() for cell in lines[0][1]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(
            str(path), f"sample sheet lacks column(s) {missing}; it has {header} (tab-separated?)"
        )
    rows = []
    for number, cells in lines[1:]:
        extra = [c for c in cells[len(header) :] if c.strip()]
        if extra:
            raise InputError(
                str(path),
                f"line {number} has {len(cells)} tab-separated cells, the header {len(header)}"
                " (a tab inside a value?)",
            )
        values = dict(zip(header, cells, strict=False))
        rows.append({c: (values.get(c) or "").strip() for c in {*COLUMNS, *header}})
    if not rows:
        raise InputError(str(path), "sample sheet has a header but no rows")
    return rows


def read_tsv_lines(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank line of a UTF-8 TSV file, cells split on
    tabs only: no quoting, so the number of rows is the number of data lines."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputError(
            str(path),
            f"{what} is not UTF-8 (byte 0x{err.object[err.start]:02x} on line {line});"
            " save it as UTF-8 (a spreadsheet's 'UTF-8 CSV/TSV' export)",
        ) from None
    return [
        (number, line.split("\t"))
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def check_sheet(
    path: str | Path,
    classes: Sequence[str],
    roots: Sequence[str | Path] = (),
    finding: Sequence[str] = (),
) -> tuple[list[dict[str, str]], list[SheetProblem]]:
    """Rows with absolute, confined paths (``image_path``/``mask_path``), and every
    problem found. Files must lie inside the sheet's folder or one of ``roots``,
    symlinks resolved, so a sheet cannot read ``../../etc/passwd``.

    ``finding``: sheet labels that all mean the finding (the last class), such as
    BUSI's benign and malignant; a row's label becomes that class, and its own label
    is kept as ``sheet_label``. Every other label must be one of the classes.

    Checked column by column, so that a sheet of 100,000 rows takes about a second:
    the schema's simple keywords screen every row and only the rows that fail them go
    through jsonschema for its message; each folder is resolved and listed once."""
    path = Path(path)
    rows = load_rows(path)
    folders = _Folders([path.parent, *roots])
    problems = _schema_problems(rows)
    seen: set[str] = set()
    known, meaning = set(classes), dict.fromkeys(finding, classes[-1])
    for number, row in enumerate(rows, start=2):
        row["row"] = str(number)
        sid = row["sample_id"]
        if sid in seen:
            problems.append(SheetProblem(number, sid, "", f"duplicate sample_id {sid!r}"))
        seen.add(sid)
        row["sheet_label"] = row["label"]
        row["label"] = meaning.get(row["label"], row["label"])
        if row["label"] and row["label"] not in known:
            reason = f"label {row['sheet_label']!r} is not one of the classes {list(classes)}"
            reason += f" or of data.finding {list(finding)}" if finding else ""
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


def run_input_problem(settings: WorkflowSettings) -> str | None:
    """What stops a run before its first job: a named file or folder that is not there,
    or the sheet's problems (labels, ids, splits, paths outside the permitted folders,
    missing files unless they are to be quarantined). Undecodable files can only be
    found by preprocessing."""
    data, pre = settings.data, settings.preprocess
    sheets = {"data.sheet": data.sheet if data.source == "sheet" else ""}
    sheets["predict.sheet"] = settings.predict.sheet
    for key, path in sheets.items():
        if path and not Path(path).is_file():
            return f"config {key}: sample sheet {path!r} does not exist"
    for section in ("classifier", "pretrain", "counterfactual", "segmenter"):
        path = getattr(settings, section).init_weights
        if path not in (None, "pretrain") and not Path(path).is_file():
            return f"config {section}.init_weights: file {path!r} not found"
    if data.source == "layout" and not data.archive and not Path(data.root or "").is_dir():
        return f"config data.root: dataset folder {data.root!r} does not exist"
    if data.source != "sheet":
        return None
    _, problems = check_sheet(data.sheet, pre.classes, pre.roots, pre.finding)
    problems = [p for p in problems if pre.on_bad_input != "skip" or not p.quarantinable]
    strict = pre.privacy == "strict"
    return str(sheet_error(Path(data.sheet), problems, strict)) if problems else None


def read_sheet(
    path: str | Path,
    classes: Sequence[str],
    require_files: bool = True,
    roots: Sequence[str | Path] = (),
    finding: Sequence[str] = (),
):
    """Check a sheet and return it as a DataFrame with absolute paths; any problem
    (missing files too, unless ``require_files`` is False) raises, all named at once."""
    import pandas as pd

    path = Path(path)
    rows, problems = check_sheet(path, classes, roots, finding)
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
    write_text(path, tsv_text(sheet[columns]))


def tsv_text(frame) -> str:
    """A DataFrame as literal TSV (no quoting: what ``read_tsv_lines`` reads back)."""
    lines = ["\t".join(map(str, frame.columns))]
    for values in frame.itertuples(index=False):
        cells = ["" if v is None or v != v else str(v) for v in values]
        bad = next((c for c in cells if "\t" in c or "\n" in c or "\r" in c), None)
        if bad is not None:
            raise InputError(repr(bad), "a value holds a tab or line break; TSV cannot hold it")
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"
