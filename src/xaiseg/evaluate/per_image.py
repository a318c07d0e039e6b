"""Evaluation in shard groups: each group's job scores its own images (segmentation
scores of every evaluated thing, localisation of every map) and the summarising
evaluation gathers those tables instead of reading every image itself.

Gathered, the tables are row for row and value for value those of one job: rows are
put back in one job's order (thing by thing, map by map, images in data order) and
every column is read back in the dtype it was written in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.shards import INDEX
from xaiseg.errors import XaisegError
from xaiseg.evaluate.saliency_metrics import per_image_localisation
from xaiseg.evaluate.tables import Evaluated, per_image_table
from xaiseg.provenance import write_json, write_provenance, write_text

SCORES, LOCATED = "per_image.csv", "localisation.csv"


def score_group(
    data_dir: str | Path,
    things: Sequence[Evaluated],
    map_dirs: Mapping[str, Path],
    out_dir: str | Path,
    group: tuple[int, int],
) -> dict:
    """Write shard group ``(number, shards_per_group)``'s per-image tables."""
    out = Path(out_dir)
    scores = [per_image_table(data_dir, [t], group).assign(thing=i) for i, t in enumerate(things)]
    scores = pd.concat([s for s in scores if len(s)] or [pd.DataFrame()], ignore_index=True)
    located = per_image_localisation(data_dir, map_dirs, group)
    write_table(out / SCORES, scores)
    write_table(out / LOCATED, located)
    counts = {"scored": len(scores), "located": len(located)}
    write_provenance(
        out,
        stage="evaluate_images",
        params={"things": [f"{t.recipe}:{t.model}" for t in things], "maps": list(map_dirs)},
        inputs=[Path(data_dir) / INDEX, *[t.masks_dir / INDEX for t in things]],
        extra={"counts": counts, "group": list(group)},
    )
    return counts


def gather_groups(
    parts: Sequence[str | Path], things: Sequence[Evaluated], map_names: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-image scores and localisation of all groups, as one job writes them."""
    for part in parts:
        record = json.loads((Path(part) / "provenance.json").read_text())
        expected = [f"{t.recipe}:{t.model}" for t in things]
        if record["params"]["things"] != expected or record["params"]["maps"] != list(map_names):
            raise XaisegError(
                f"{part}: scored other models or maps than this evaluation's: rerun its group"
            )
    scores = _in_order([read_table(Path(p) / SCORES) for p in parts], "thing", range(len(things)))
    located = _in_order([read_table(Path(p) / LOCATED) for p in parts], "map", map_names)
    return scores.drop(columns="thing", errors="ignore"), located


def _in_order(tables: list[pd.DataFrame], column: str, order) -> pd.DataFrame:
    """Groups' tables (each in data order) concatenated, then stably sorted by
    ``column`` in ``order``: one job's rows, one job's order."""
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame()
    table = pd.concat(tables, ignore_index=True)
    rank = {value: i for i, value in enumerate(order)}
    keys = table[column].map(rank).to_numpy()
    return table.iloc[np.argsort(keys, kind="stable")].reset_index(drop=True)


def write_table(path: Path, table: pd.DataFrame) -> None:
    """A CSV, and beside it its columns' dtypes (read_table restores them: float32
    scores stay float32, ids that look like numbers stay text)."""
    write_json(_dtypes_path(path), {c: str(t) for c, t in table.dtypes.items()})
    write_text(path, table.to_csv(index=False))


def read_table(path: Path) -> pd.DataFrame:
    dtypes = json.loads(_dtypes_path(path).read_text())
    if not dtypes:
        return pd.DataFrame()
    numeric = {c for c, t in dtypes.items() if t.startswith(("float", "int", "uint", "bool"))}
    # Only a number's empty field is missing: an id spelt "NA" stays "NA".
    return pd.read_csv(
        path,
        dtype={c: t if c in numeric else str for c, t in dtypes.items()},
        keep_default_na=False,
        na_values={c: [""] for c in numeric},
    )


def _dtypes_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.dtypes.json")
