"""Group-aware, stratified, seeded train/val/test splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xaiseg.errors import InputError

SPLITS = ("train", "val", "test")


def assign_splits(
    sheet: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int
) -> pd.Series:
    """Return a split per row, never cutting a group.

    Rows that already name a split keep it (and pull their whole group with them).
    The other groups are stratified by whether they hold any positive sample, then
    dealt out so each split gets close to its fraction of samples.
    """
    fixed = _fixed_group_splits(sheet)
    groups = sheet.groupby("group", sort=True)
    stats = pd.DataFrame({"size": groups.size(), "positive": groups["label_index"].max() > 0}).drop(
        index=list(fixed)
    )
    rng = np.random.default_rng(seed)
    chosen: dict[str, str] = dict(fixed)
    for _, stratum in stats.groupby("positive", sort=True):
        order = stratum.index.to_numpy()[rng.permutation(len(stratum))]
        chosen.update(_deal(order, stratum["size"], val_fraction, test_fraction))
    return sheet["group"].map(chosen).rename("split")


def _fixed_group_splits(sheet: pd.DataFrame) -> dict[str, str]:
    fixed: dict[str, str] = {}
    for group, splits in sheet[sheet["split"] != ""].groupby("group")["split"]:
        names = sorted(set(splits))
        if len(names) > 1:
            raise InputError("sample sheet", f"group {group!r} is given several splits {names}")
        fixed[group] = names[0]
    return fixed


def _deal(order, sizes: pd.Series, val_fraction: float, test_fraction: float) -> dict[str, str]:
    """Give groups, in order, to whichever split is furthest below its target share."""
    targets = {
        "test": test_fraction,
        "val": val_fraction,
        "train": 1 - val_fraction - test_fraction,
    }
    counts = dict.fromkeys(targets, 0)
    total = float(sizes.sum())
    out = {}
    for group in order:
        deficit = {s: targets[s] * total - counts[s] for s in targets if targets[s] > 0}
        split = max(deficit, key=lambda s: (deficit[s], s == "train"))
        out[group] = split
        counts[split] += int(sizes[group])
    return out
