"""A store of fixed-size safetensors shards plus a JSON index (no pickle anywhere).

Every per-sample artifact (images, saliency maps, pseudo-masks) uses the same layout:
``index.json`` lists the samples in order, and shard ``k`` holds rows
``k * shard_size ... (k + 1) * shard_size - 1`` of every tensor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from xaiseg.provenance import atomic_path, write_json

INDEX = "index.json"


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


class ShardWriter:
    """Accumulate rows and flush a shard every ``shard_size`` rows, atomically."""

    def __init__(self, folder: str | Path, shard_size: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self._rows: list[Mapping[str, np.ndarray]] = []
        self.shards: list[str] = []

    def add(self, row: Mapping[str, np.ndarray]) -> None:
        self._rows.append(row)
        if len(self._rows) == self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        keys = self._rows[0].keys()
        tensors = {k: torch.from_numpy(np.stack([r[k] for r in self._rows])) for k in keys}
        name = shard_name(len(self.shards))
        with atomic_path(self.folder / name) as tmp:
            save_file(tensors, str(tmp))
        self.shards.append(name)
        self._rows = []

    def close(self, index: Mapping[str, Any]) -> None:
        """Flush the last shard and write the index last, so it marks completeness."""
        self._flush()
        write_json(
            self.folder / INDEX, {**index, "shards": self.shards, "shard_size": self.shard_size}
        )


class ShardStore:
    """Read access to a shard folder: the index, and tensors by sample position."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.index = json.loads((self.folder / INDEX).read_text())
        self.samples: list[dict[str, Any]] = self.index.get("samples", [])

    def iter_shards(self) -> Iterator[dict[str, torch.Tensor]]:
        for name in self.index["shards"]:
            yield load_file(str(self.folder / name))

    def load(self, keys: Sequence[str]) -> dict[str, torch.Tensor]:
        """Concatenate the given tensors over all shards, in sample order."""
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        for shard in self.iter_shards():
            for k in keys:
                parts[k].append(shard[k])
        return {k: torch.cat(v) for k, v in parts.items()}

    def positions(self, split: str | None = None) -> list[int]:
        return [i for i, s in enumerate(self.samples) if split is None or s["split"] == split]

    def load_split(self, keys: Sequence[str], split: str | None = None) -> dict[str, torch.Tensor]:
        """Tensors of one split (every sample when ``split`` is None)."""
        keep = torch.tensor(self.positions(split), dtype=torch.long)
        return {k: v[keep] for k, v in self.load(keys).items()}
