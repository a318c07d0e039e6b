"""Preprocessing in shard groups: the sheet checked and split once (the plan), one job
per group of rows decoding its images, and a join writing the data artifact that one
job would have written, byte for byte.

Group ``g`` of ``k`` shards decodes plan rows ``g * k * shard_size`` on. While no file
is quarantined, its shards are the artifact's own and the join only links them; from
the first group that lost a row on, the join re-packs rows into full shards.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from safetensors.torch import load_file

from xaiseg.data.preprocess import Plan, decode_rows, plan_rows, write_data
from xaiseg.data.shards import INDEX, ShardWriter, link_or_copy, shard_name
from xaiseg.errors import XaisegError
from xaiseg.io.sheet import SheetProblem, sheet_error
from xaiseg.provenance import write_json, write_provenance, write_text
from xaiseg.settings import PreprocessSettings

ROWS, KEPT, PROBLEMS, PLAN = "rows.tsv", "kept.tsv", "problems.json", "plan.json"


def write_plan(sheet_path: str | Path, out_dir: str | Path, settings: PreprocessSettings) -> int:
    """Check the sheet and assign splits once; returns the number of rows to decode.
    A problem of the sheet itself fails here, before any group starts."""
    plan = plan_rows(sheet_path, settings)
    fatal = [p for p in plan.problems if not p.quarantinable]
    if fatal or (plan.problems and settings.on_bad_input == "fail"):
        raise sheet_error(plan.sheet, plan.problems, settings.privacy == "strict")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_rows(out / ROWS, plan.rows)
    _write_problems(out / PROBLEMS, plan.problems)
    write_json(out / PLAN, {"sheet": str(plan.sheet), "n_in": plan.n_in, "rows": len(plan.rows)})
    return len(plan.rows)


def read_plan(plan_dir: str | Path) -> Plan:
    folder = Path(plan_dir)
    summary = json.loads((folder / PLAN).read_text())
    return Plan(
        Path(summary["sheet"]),
        _read_rows(folder / ROWS),
        _read_problems(folder / PROBLEMS),
        summary["n_in"],
    )


def preprocess_group(
    plan_dir: str | Path,
    out_dir: str | Path,
    settings: PreprocessSettings,
    group: tuple[int, int],
    threads: int = 1,
) -> dict:
    """Decode shard group ``(number, shards_per_group)``'s rows of the plan."""
    number, shards = group
    plan = read_plan(plan_dir)
    size = shards * settings.shard_size
    rows = plan.rows[number * size : (number + 1) * size]
    if not rows:
        raise XaisegError(f"{plan_dir}: no shard group {number} of {shards} shards")
    out = Path(out_dir)
    writer = ShardWriter(out, settings.shard_size, first_shard=number * shards)
    kept, problems = decode_rows(rows, plan.rows, settings, threads, writer)
    if problems and settings.on_bad_input == "fail":
        raise sheet_error(plan.sheet, problems, settings.privacy == "strict")
    _write_rows(out / KEPT, kept)
    _write_problems(out / PROBLEMS, problems)
    counts = {"in": len(rows), "kept": len(kept), "quarantined": len(problems)}
    shard_size = settings.shard_size
    write_json(out / INDEX, {"shards": writer.finish(), "shard_size": shard_size, "counts": counts})
    write_provenance(
        out, stage="preprocess_group", params=asdict(settings), seed=settings.seed,
        extra={"counts": counts, "group": list(group), "workers": threads},
        name_inputs=settings.privacy != "strict",
    )  # fmt: skip
    return counts


def join_preprocessed(
    plan_dir: str | Path,
    parts: list[str | Path],
    out_dir: str | Path,
    settings: PreprocessSettings,
) -> dict:
    """The data artifact, kept sheet and quarantine from every group's folder, in order."""
    plan = read_plan(plan_dir)
    out = Path(out_dir)
    kept: list[dict] = []
    problems: list[SheetProblem] = []
    shards: list[str] = []
    packer: ShardWriter | None = None  # from the first short shard on: re-packing
    size, placed, decoded = settings.shard_size, 0, 0
    for number, part in enumerate(map(Path, parts)):
        index = json.loads((part / INDEX).read_text())
        group_kept, group_problems = _read_rows(part / KEPT), _read_problems(part / PROBLEMS)
        _check_part(part, plan, decoded, index["counts"]["in"], group_kept, group_problems)
        decoded += index["counts"]["in"]
        for k, name in enumerate(index["shards"]):
            tensors = load_file(str(part / name))
            rows = len(next(iter(tensors.values())))
            final = number == len(parts) - 1 and k == len(index["shards"]) - 1
            if packer is None and (rows == size or final):
                shards.append(shard_name(placed // size))
                link_or_copy(part / name, out / "data" / shards[-1])
            else:
                packer = packer or ShardWriter(out / "data", size, first_shard=placed // size)
                for i in range(rows):
                    packer.add({key: value[i].numpy() for key, value in tensors.items()})
            placed += rows
        kept += group_kept
        problems += group_problems
    if decoded != len(plan.rows):
        raise XaisegError(
            f"{out}: the groups decoded {decoded} of the plan's {len(plan.rows)} rows"
        )
    shards += packer.finish() if packer else []
    return write_data(out, plan, kept, problems, shards, settings, threads=0)


def _check_part(
    part: Path,
    plan: Plan,
    start: int,
    count: int,
    kept: list[dict],
    problems: list[SheetProblem],
) -> None:
    """A group's rows must be the plan's, from ``start`` on: each kept or quarantined."""
    ids = [r["sample_id"] for r in plan.rows[start : start + count]]
    lost = {p.sample_id for p in problems}
    if len(ids) != count or [r["sample_id"] for r in kept] != [i for i in ids if i not in lost]:
        raise XaisegError(
            f"{part} does not hold plan rows {start} to {start + count - 1}: join the "
            "groups in order, each made from the same plan"
        )


def _write_rows(path: Path, rows: list[dict]) -> None:
    write_text(path, pd.DataFrame(rows).to_csv(sep="\t", index=False))


def _read_rows(path: Path) -> list[dict]:
    """Rows as the plan made them: every field text, the label's index a number."""
    if path.stat().st_size <= 1:
        return []
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    rows = frame.to_dict("records")
    for row in rows:
        row["label_index"] = int(row["label_index"])
    return rows


def _write_problems(path: Path, problems: list[SheetProblem]) -> None:
    write_json(path, [asdict(p) for p in problems])


def _read_problems(path: Path) -> list[SheetProblem]:
    return [SheetProblem(**p) for p in json.loads(path.read_text())]
