"""Dataset archives, extracted side by side into one folder before a layout reads it."""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

from xaiseg.errors import InputError


def extract_archives(archives: Sequence[str | Path], into: str | Path) -> None:
    """Every archive (tar, compressed or not) into ``into``, in order. Members that
    would land outside it, links out of it and device files are refused
    (``tarfile``'s ``data`` filter), as are unreadable archives, naming the file."""
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")
        except (tarfile.TarError, OSError) as error:
            raise InputError(str(archive), f"cannot extract the archive ({error})") from error
