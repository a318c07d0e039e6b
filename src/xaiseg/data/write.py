"""The data artifact's index over its written shards, the kept sheet and the
quarantine, with provenance: the last step of preprocessing, one job's or the groups'
join. Fails instead when a problem is fatal under the settings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from xaiseg.data.plan import Plan
from xaiseg.data.shards import INDEX
from xaiseg.errors import InputError
from xaiseg.io.sheet import COLUMNS, SheetProblem, path_token, sheet_error, tsv_text, write_sheet
from xaiseg.provenance import write_json, write_provenance, write_text
from xaiseg.settings import PreprocessSettings


def write_data(
    out: Path,
    plan: Plan,
    kept: list[dict],
    problems: list[SheetProblem],
    shards: list[str],
    settings: PreprocessSettings,
    threads: int,
) -> dict:
    """The data artifact's index (its shards written), the kept sheet, the quarantine
    and provenance; fails instead when a problem is fatal under the settings."""
    strict = settings.privacy == "strict"
    problems = [*plan.problems, *problems]
    fatal = [p for p in problems if not p.quarantinable]
    if fatal or (problems and settings.on_bad_input == "fail"):
        raise sheet_error(plan.sheet, sorted(problems, key=_order), strict)
    check_split_classes(kept, settings.classes)
    quarantined = sorted(problems, key=_order)
    _write_quarantine(out / "quarantine.tsv", quarantined, strict)
    counts = {"in": plan.n_in, "kept": len(kept), "quarantined": len(quarantined)}
    samples = [_index_entry(r, strict) for r in kept]
    index = {
        "classes": list(settings.classes),
        "image_size": [settings.image_size] * settings.spatial_dims,
        "channels": settings.channels,
        "samples": samples,
        "counts": counts,
        "shards": shards,
        "shard_size": settings.shard_size,
    }
    write_json(out / "data" / INDEX, index)  # last of the shards: marks completeness
    _write_kept_sheet(out / "sheet.tsv", kept, strict)
    write_provenance(
        out / "data",
        stage="preprocess",
        params={**asdict(settings), "roots": [path_token(r) for r in settings.roots]}
        if strict
        else asdict(settings),
        inputs=[plan.sheet],
        seed=settings.seed,
        extra={"counts": counts, "split_sizes": _split_sizes(samples), "workers": threads},
        name_inputs=not strict,
    )
    return counts


def _order(problem: SheetProblem) -> tuple[int, str]:
    return (problem.row or 0, problem.reason)


def check_split_classes(kept: Sequence[dict], classes: Sequence[str]) -> None:
    """Train and val need every class (else nothing to learn or to select on); a test
    split without the finding is flagged in the log."""
    found: dict[str, set[str]] = {}
    for row in kept:
        found.setdefault(row["split"], set()).add(row["label"])
    problems = [
        f"the {split} split holds no {name!r} image"
        for split in ("train", "val")
        for name in classes
        if name not in found.get(split, set())
    ]
    if problems:
        raise InputError(
            "splits",
            "; ".join(problems) + " -- add images of that class, or fix the split column",
        )
    if classes[-1] not in found.get("test", set()):
        print(f"warning: the test split holds no {classes[-1]!r} image: Dice cannot be measured")


def _index_entry(row: dict, strict: bool) -> dict:
    entry = {
        "sample_id": row["sample_id"],
        "label": row["label"],
        "label_index": int(row["label_index"]),
        "split": row["split"],
        "group": path_token(row["group"]) if strict else row["group"],
        "has_mask": bool(row["mask"]),
    }
    if not strict:
        entry["source"] = os.path.basename(row["image"])
    return entry


def _write_kept_sheet(path: Path, kept: list[dict], strict: bool) -> None:
    """The rows kept, with their split, paths as the user wrote them (relative to the
    sheet's folder); under ``privacy: strict`` paths and groups become hashes."""
    frame = pd.DataFrame(kept, columns=[*COLUMNS])
    if strict:
        for column in ("image", "mask", "group"):
            frame[column] = frame[column].map(path_token)
    write_sheet(path, frame)


def _split_sizes(samples: Sequence[dict]) -> dict[str, int]:
    return pd.Series([s["split"] for s in samples]).value_counts().to_dict()


def _write_quarantine(path: Path, bad: list[SheetProblem], strict: bool) -> None:
    frame = pd.DataFrame(
        [
            {
                "row": p.row,
                "sample_id": p.sample_id,
                "file": path_token(p.file) if strict else p.file,
                "reason": p.reason.replace("\n", " "),
            }
            for p in bad
        ],
        columns=["row", "sample_id", "file", "reason"],
    )
    write_text(path, tsv_text(frame))
