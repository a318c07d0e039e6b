"""Artifacts checked against their provenance: each ``provenance.json`` lists the
files its stage wrote (size, SHA-256, modification time), so a file cut short or
changed afterwards is found, named with the stage that makes it, and set aside to be
made again, never used.

Two depths: ``quick`` (at every workflow start: sizes, and a hash only where the
modification time moved) and full (``xaiseg verify``, and every stage that reads an
artifact: the hash of each file it reads)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xaiseg.errors import XaisegError

PROVENANCE = "provenance.json"
SET_ASIDE = "corrupt"  # under the run folder: what a repair moved out of the way
# Resume state and claims change after the stage's record; they are not its outputs.
NOT_OUTPUTS = ("checkpoint", "owner.json")


class CorruptArtifact(XaisegError):
    """A file that does not match its stage's record."""


@dataclass(frozen=True)
class Finding:
    folder: Path  # the artifact: the folder holding provenance.json
    file: Path
    stage: str
    reason: str

    def describe(self) -> str:
        return f"{self.file}: {self.reason} (made by stage {self.stage})"


def output_records(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Size, SHA-256 and modification time of every file the stage wrote into
    ``folder`` (relative path -> record); folders with a record of their own, resume
    state and hidden files are left out."""
    folder = Path(folder)
    records = {}
    for path in sorted(_outputs(folder)) if folder.is_dir() else []:
        stat = path.stat()
        records[path.relative_to(folder).as_posix()] = {
            "bytes": stat.st_size,
            "sha256": _sha256(path),
            "mtime_ns": stat.st_mtime_ns,
        }
    return records


def _outputs(folder: Path):
    for entry in os.scandir(folder):
        if entry.name.startswith(".") or entry.name in (PROVENANCE, *NOT_OUTPUTS):
            continue
        if entry.is_dir(follow_symlinks=False):
            if not (Path(entry.path) / PROVENANCE).exists():
                yield from _outputs(Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            yield Path(entry.path)


def _sha256(path: Path, data: bytes | None = None) -> str:
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_folder(folder: str | Path, quick: bool = False) -> list[Finding]:
    """What in one artifact folder does not match its record (missing files are left
    to the workflow, which remakes what is missing)."""
    folder = Path(folder)
    record = _record(folder / PROVENANCE)
    findings = []
    for name, expected in record.get("outputs", {}).items():
        path = folder / name
        if not path.is_file():
            continue
        reason = _mismatch(path, expected, quick)
        if reason:
            findings.append(Finding(folder, path, record.get("stage", "?"), reason))
    return findings


def _mismatch(path: Path, expected: dict[str, Any], quick: bool) -> str:
    stat = path.stat()
    if stat.st_size != expected["bytes"]:
        return f"{stat.st_size:,} bytes where its stage wrote {expected['bytes']:,}"
    if quick and stat.st_mtime_ns == expected.get("mtime_ns"):
        return ""
    if _sha256(path) != expected["sha256"]:
        return "its content changed since its stage wrote it (SHA-256 differs)"
    return ""


def _record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def check_tree(root: str | Path, quick: bool = False) -> tuple[int, list[Finding]]:
    """(artifacts checked, findings) for every artifact folder under ``root``, the
    folder of set-aside artifacts excluded."""
    root = Path(root)
    folders = [
        p.parent
        for p in sorted(root.rglob(PROVENANCE))
        if SET_ASIDE not in p.relative_to(root).parts
    ]
    findings = [f for folder in folders for f in check_folder(folder, quick)]
    return len(folders), findings


def set_aside(root: str | Path, findings: list[Finding]) -> list[tuple[Path, Path]]:
    """Move each corrupt artifact folder under ``root/corrupt/<time>/`` (nothing is
    deleted); the workflow then finds its outputs missing and remakes them."""
    root = Path(root)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for folder in sorted({f.folder for f in findings}):
        target = root / SET_ASIDE / stamp / folder.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(target))
        moved.append((folder, target))
    return moved


def repair_at_start(run_folder: str | Path) -> list[str]:
    """The workflow's start: quick check, corrupt artifacts set aside; lines to print."""
    root = Path(run_folder)
    if not root.is_dir():
        return []
    _, findings = check_tree(root, quick=True)
    lines = [f"xaiseg: {f.describe()}" for f in findings]
    for folder, target in set_aside(root, findings):
        lines.append(f"xaiseg: set {folder} aside to {target}; this run makes it again")
    return lines


def verified_bytes(path: str | Path) -> bytes:
    """A file's bytes, checked against the record of the artifact that holds it (its
    own folder's provenance, or one of the two folders above)."""
    path = Path(path)
    data = path.read_bytes()
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        record = _record(folder / PROVENANCE)
        name = os.path.relpath(path, folder)
        expected = record.get("outputs", {}).get(Path(name).as_posix())
        if expected is None:
            continue
        if len(data) != expected["bytes"] or _sha256(path, data) != expected["sha256"]:
            raise CorruptArtifact(
                f"{path}: corrupt artifact ({len(data):,} bytes; its stage"
                f" {record.get('stage', '?')} wrote {expected['bytes']:,} with another"
                f" SHA-256). Run `xaiseg verify {folder} --repair`, then the workflow again:"
                " it makes the artifact anew"
            )
        break
    return data
