"""Public datasets' own folder layouts turned into a sample sheet, one file per layout
(``<name>.py`` defining ``<name>_layout``, found by ``xaiseg.registry``).

Each layout is a function ``(root, options) -> DataFrame`` with the sheet's columns and
paths relative to ``root``, so the sheet can sit in ``root`` and travel with it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from xaiseg.errors import InputError, XaisegError
from xaiseg.io.archives import extract_archives
from xaiseg.registry import load
from xaiseg.settings import LayoutSettings

Layout = Callable[..., pd.DataFrame]
# Every layout, found by its file: ``<name>.py`` defining ``<name>_layout``.
LAYOUTS: dict[str, Layout] = load("layout")


def build_sheet(layout: str, root: str | Path, **options) -> pd.DataFrame:
    root = Path(root)
    if layout not in LAYOUTS:
        raise InputError(layout, f"unknown layout; choose one of {sorted(LAYOUTS)}")
    if not root.is_dir():
        raise InputError(str(root), "dataset folder does not exist")
    # The options' defaults are LayoutSettings' (written once there): a layout takes
    # the fields it names.
    function = LAYOUTS[layout]
    accepted = inspect.signature(function).parameters
    defaults = {k: v for k, v in asdict(LayoutSettings()).items() if k in accepted}
    sheet = function(root, **{**defaults, **options})
    if sheet.empty:
        raise InputError(str(root), f"no samples found for layout {layout!r} (empty folder?)")
    return sheet


def write_layout_sheet(
    layout: str,
    root: str | Path,
    out: str | Path,
    options: dict,
    archives: Sequence[str | Path] = (),
    into: str | Path | None = None,
) -> pd.DataFrame:
    """Build, validate and write a sheet whose paths are relative to the sheet's folder;
    with ``archives``, unpacked into ``into`` first (the root lies inside)."""
    import os

    from xaiseg.io.sheet import read_sheet, write_sheet

    if archives:
        if into is None:
            raise XaisegError("sheet: --extract needs --into, the folder the root lies in")
        extract_archives(archives, into)
    root, out = Path(root).resolve(), Path(out).resolve()
    # Layouts take the options that apply to them; derived files go beside the sheet.
    accepted = inspect.signature(LAYOUTS.get(layout, LAYOUTS["folders"])).parameters
    options = {**options, "derived_dir": out.parent}
    options = {k: v for k, v in options.items() if k in accepted}
    sheet = build_sheet(layout, root, **options)
    for column in ("image", "mask"):
        sheet[column] = [os.path.relpath(root / p, out.parent) if p else "" for p in sheet[column]]
    write_sheet(out, sheet)
    # The same checks preprocessing applies; the dataset's folder is a permitted root.
    read_sheet(out, sorted(set(sheet["label"])), roots=[root])
    return sheet
