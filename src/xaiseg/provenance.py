"""Reproducibility helpers: seeds, hashes, versions and atomic artifact writes.

Every artifact is written to a temporary name in its own folder and renamed into
place, so an interrupted stage never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "xaiseg",
    "torch",
    "monai",
    "captum",
    "numpy",
    "pydicom",
    "nibabel",
    "safetensors",
    "scikit-image",
    "pandas",
)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; an artifact gets the mode the user's umask gives a new file.
    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        yield tmp
        # Again: a writer may have replaced the file (safetensors writes a new one).
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    write_text(path, json_text(payload))


def json_text(payload: Any) -> str:
    """Sorted, indented JSON that also takes paths and numpy scalars."""
    return json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def seed_everything(seed: int) -> None:
    """Seed every generator a stage may touch, and ask torch for determinism."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # cuBLAS is deterministic only with a fixed workspace, set before its first use.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    deterministic_algorithms()


def deterministic_algorithms() -> None:
    """torch's deterministic mode, warning where an op has none.

    ``torch.use_deterministic_algorithms`` also imports ``torch._inductor`` to set
    torch.compile's flag: about 1.3 s of CPU in every stage's start-up, for a compiler
    no stage uses. Its one other step is this call; the public function is used once the
    inductor is loaded anyway."""
    import torch

    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=True)


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_inputs(paths: Sequence[str | os.PathLike[str]], named: bool = True) -> dict[str, str]:
    """SHA-256 of every input file; folders are hashed file by file.

    Keys are paths relative to the working directory when the file lies inside it;
    a file outside it (the user's own data tree, whose folder names may identify a
    patient) is keyed by its name alone, or, with ``named=False``, by its position.
    """
    hashes: dict[str, str] = {}
    for path in paths:
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            # Provenance and hidden files (Snakemake's timestamps) are not inputs.
            if f.name != "provenance.json" and not f.name.startswith("."):
                hashes[_input_key(f, named, len(hashes))] = file_sha256(f)
    return hashes


def _input_key(path: Path, named: bool, position: int) -> str:
    if not named:
        return f"input-{position}"
    resolved = path.resolve()
    if resolved.is_relative_to(Path.cwd()):
        return resolved.relative_to(Path.cwd()).as_posix()
    return path.name


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# Where a batch system ran the stage: its job id, node and the GPUs it handed over.
JOB_VARIABLES = ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "CUDA_VISIBLE_DEVICES")


def batch_job() -> dict[str, str]:
    return {name: os.environ[name] for name in JOB_VARIABLES if name in os.environ}


def write_provenance(
    folder: str | os.PathLike[str],
    *,
    stage: str,
    params: Mapping[str, Any],
    inputs: Sequence[str | os.PathLike[str]] = (),
    seed: int | None = None,
    device: str = "cpu",
    extra: Mapping[str, Any] | None = None,
    name_inputs: bool = True,
) -> Path:
    """Write ``provenance.json`` into an artifact folder and return its path: the
    stage's last write, listing what it wrote (``xaiseg.integrity``)."""
    from xaiseg.integrity import output_records

    record = {
        "stage": stage,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": dict(params),
        "inputs": hash_inputs(inputs, named=name_inputs),
        "seed": seed,
        "device": device,
        "job": batch_job(),
        "versions": package_versions(),
        **(dict(extra) if extra else {}),
        "outputs": output_records(folder),
    }
    path = Path(folder) / "provenance.json"
    write_json(path, record)
    return path


def throughput(images: int, seconds: float) -> dict:
    """What the run's end reads (``xaiseg.runtimes``): images, seconds, images per
    second of a stage's computation."""
    rate = images / seconds if seconds > 0 else None
    return {"images": images, "seconds": round(seconds, 3), "images_per_second": rate}
