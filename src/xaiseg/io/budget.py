"""One pixel budget for every reader, checked from the file's header before decoding:
a 1.7 MB file may hold 400 million pixels."""

from __future__ import annotations

from pathlib import Path

from xaiseg.errors import InputError

# preprocess.max_pixels' default (settings.py) for readers called without settings.
DEFAULT_MAX_PIXELS = 100_000_000


def check_pixels(path: str | Path, count: int, budget: int | None, what: str = "pixels") -> None:
    budget = DEFAULT_MAX_PIXELS if budget is None else budget
    if count > budget:
        raise InputError(
            str(path),
            f"image is too large to decode safely: {count:,} {what}, over the budget of"
            f" {budget:,} (preprocess.max_pixels; raise it if the file is meant)",
        )
