"""The join of preprocessing run in shard groups (``preprocess_group``): the groups'
shards gathered into the data artifact that one job writes, byte for byte, with its
kept sheet and quarantine. Imports neither torch nor MONAI: the join links files.

Group ``g`` of ``k`` shards decodes plan rows ``g * k * shard_size`` on. While no file
is quarantined, its shards are the artifact's own and the join only links them; from
the first group that lost a row on, the join re-packs rows into full shards.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.numpy import load

from xaiseg.data.plan import KEPT, PROBLEMS, Plan, read_plan, read_problems, read_rows
from xaiseg.data.shards import INDEX, ShardWriter, link_or_copy, shard_name
from xaiseg.data.write import write_data
from xaiseg.errors import XaisegError
from xaiseg.integrity import verified_bytes
from xaiseg.io.sheet import SheetProblem
from xaiseg.settings import PreprocessSettings


def join_preprocessed(
    plan_dir: str | Path,
    sheet_path: str | Path,
    parts: list[str | Path],
    out_dir: str | Path,
    settings: PreprocessSettings,
) -> dict:
    """The data artifact, kept sheet and quarantine from every group's folder, in order."""
    plan = read_plan(plan_dir, sheet_path, settings)
    out = Path(out_dir)
    kept: list[dict] = []
    problems: list[SheetProblem] = []
    shards: list[str] = []
    packer: ShardWriter | None = None  # from the first short shard on: re-packing
    size, placed, decoded = settings.shard_size, 0, 0
    for number, part in enumerate(map(Path, parts)):
        index = json.loads((part / INDEX).read_text())
        group_kept, group_problems = read_rows(part / KEPT), read_problems(part / PROBLEMS)
        _check_part(part, plan, decoded, index["counts"]["in"], group_kept, group_problems)
        decoded += index["counts"]["in"]
        for k, name in enumerate(index["shards"]):
            rows = min(size, len(group_kept) - k * size)  # full shards, then the rest
            final = number == len(parts) - 1 and k == len(index["shards"]) - 1
            if packer is None and (rows == size or final):
                shards.append(shard_name(placed // size))
                link_or_copy(part / name, out / "data" / shards[-1])
            else:  # read only here: a join that links never opens a shard
                packer = packer or ShardWriter(out / "data", size, first_shard=placed // size)
                tensors = load(verified_bytes(part / name))
                for i in range(rows):
                    packer.add({key: value[i] for key, value in tensors.items()})
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
