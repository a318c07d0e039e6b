"""The checked sheet: rows to decode with absolute paths and their split, and the
problems found without decoding. Made once per run; with shard groups it is written
(``plan/``) and each group's job decodes its slice of the rows. Imports neither torch
nor MONAI: checking a sheet of 100,000 rows takes about 2 s.

A written plan holds no path: rows keep their files as the sheet's folder sees them
(relative), or only as hashes under ``privacy: strict``, and a group's job finds the
files again from the sheet itself, whose hash the plan records."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from xaiseg.data.splits import assign_splits
from xaiseg.errors import XaisegError
from xaiseg.io.sheet import (
    SheetProblem,
    check_sheet,
    path_token,
    read_tsv_lines,
    sheet_error,
    tsv_text,
)
from xaiseg.provenance import file_sha256, write_json, write_text
from xaiseg.settings import PreprocessSettings

ROWS, KEPT, PROBLEMS, PLAN = "rows.tsv", "kept.tsv", "problems.json", "plan.json"
# Where a row's files are read from: in memory only, never written into an artifact.
PATH_COLUMNS = ("image_path", "mask_path")
PERCENTILE_SCOPES = ("image", "group")


@dataclass
class Plan:
    """The checked sheet: rows to decode (absolute paths, split assigned, in sheet
    order), the problems found without decoding, and the sheet's row count."""

    sheet: Path
    rows: list[dict]
    problems: list[SheetProblem]
    n_in: int


def plan_rows(sheet_path: str | Path, settings: PreprocessSettings) -> Plan:
    sheet_path = Path(sheet_path)
    if settings.percentiles_over not in PERCENTILE_SCOPES:
        raise XaisegError(
            f"preprocess percentiles_over {settings.percentiles_over!r}: choose {PERCENTILE_SCOPES}"
        )
    strict = settings.privacy == "strict"
    rows, problems = check_sheet(sheet_path, settings.classes, settings.roots, settings.finding)
    if strict:
        problems = [redacted(p) for p in problems]
    flagged = {p.row for p in problems}
    frame = pd.DataFrame([r for r in rows if int(r["row"]) not in flagged])
    if frame.empty:
        raise sheet_error(sheet_path, problems, strict)
    frame["label_index"] = frame["label"].map(settings.classes.index)
    frame.loc[frame["group"] == "", "group"] = frame["sample_id"]
    frame["split"] = assign_splits(
        frame, settings.val_fraction, settings.test_fraction, settings.seed
    )
    for column in ("image", "mask"):
        frame[column] = [shown_path(v, sheet_path.parent, strict) for v in frame[column]]
    if strict:
        frame["group"] = frame["group"].map(path_token)
    return Plan(sheet_path, frame.to_dict("records"), problems, len(rows))


def shown_path(value: str, sheet_folder: Path, strict: bool) -> str:
    """A file as artifacts name it: relative to the sheet's folder, or a hash."""
    if strict or not value:
        return path_token(value)
    if not os.path.isabs(value):
        return value
    return os.path.relpath(value, os.path.abspath(sheet_folder))


def redacted(problem: SheetProblem) -> SheetProblem:
    return SheetProblem(
        problem.row, problem.sample_id, path_token(problem.file), problem.reason,
        problem.quarantinable,
    )  # fmt: skip


def write_plan(sheet_path: str | Path, out_dir: str | Path, settings: PreprocessSettings) -> int:
    """Check the sheet and assign splits once; returns the number of rows to decode.
    A problem of the sheet itself fails here, before any group starts."""
    plan = plan_rows(sheet_path, settings)
    fatal = [p for p in plan.problems if not p.quarantinable]
    if fatal or (plan.problems and settings.on_bad_input == "fail"):
        raise sheet_error(plan.sheet, plan.problems, settings.privacy == "strict")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / ROWS, plan.rows)
    write_problems(out / PROBLEMS, plan.problems)
    summary = {"sheet_sha256": file_sha256(plan.sheet), "n_in": plan.n_in, "rows": len(plan.rows)}
    write_json(out / PLAN, summary)
    return len(plan.rows)


def read_plan(plan_dir: str | Path, sheet_path: str | Path, settings: PreprocessSettings) -> Plan:
    """A written plan, its rows' files found again in the sheet it was made from."""
    folder, sheet_path = Path(plan_dir), Path(sheet_path)
    summary = json.loads((folder / PLAN).read_text())
    if not sheet_path.is_file() or file_sha256(sheet_path) != summary["sheet_sha256"]:
        raise XaisegError(
            f"{folder}: the sample sheet changed (or is gone) since this plan was made from"
            " it; rerun the workflow, which makes the plan again"
        )
    rows = read_rows(folder / ROWS)
    located, _ = check_sheet(sheet_path, settings.classes, settings.roots, settings.finding)
    paths = {r["sample_id"]: r for r in located}
    for row in rows:
        row.update({c: paths[row["sample_id"]][c] for c in PATH_COLUMNS})
    return Plan(sheet_path, rows, read_problems(folder / PROBLEMS), summary["n_in"])


def write_rows(path: Path, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    write_text(path, tsv_text(frame.drop(columns=list(PATH_COLUMNS), errors="ignore")))


def read_rows(path: Path) -> list[dict]:
    """Rows as the plan made them: every field text, the label's index a number."""
    lines = read_tsv_lines(path, "plan rows")
    if len(lines) <= 1:
        return []
    header = lines[0][1]
    rows = [dict(zip(header, cells, strict=True)) for _, cells in lines[1:]]
    for row in rows:
        row["label_index"] = int(row["label_index"])
    return rows


def write_problems(path: Path, problems: list[SheetProblem]) -> None:
    write_json(path, [asdict(p) for p in problems])


def read_problems(path: Path) -> list[SheetProblem]:
    return [SheetProblem(**p) for p in json.loads(path.read_text())]
