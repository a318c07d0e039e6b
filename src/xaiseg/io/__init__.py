"""Readers for every input format, one module each, behind one dispatcher.

Imported lazily: the sample-sheet checks (``xaiseg.io.sheet``) run inside Snakemake
before any job, where the image decoders need not be installed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_image", "load_mask"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from xaiseg.io import readers

        return getattr(readers, name)
    raise AttributeError(name)
