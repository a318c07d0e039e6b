"""The join of a per-sample stage run in shard groups: the groups' shards gathered into
one artifact (``xaiseg.data.shards.join_groups``), with one provenance record: the first
group's parameters, the groups' counts and throughput summed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from xaiseg.data.shards import INDEX, join_groups
from xaiseg.provenance import throughput, write_provenance

# Counts that are the same in every group (thresholds learnt once), not summed.
SHARED_COUNTS = ("gate_threshold", "reference_threshold")


def join_artifact(data_dir: str | Path, parts: Sequence[str | Path], out_dir: str | Path) -> dict:
    summary = join_groups(data_dir, parts, out_dir)
    records = [json.loads((Path(p) / "provenance.json").read_text()) for p in parts]
    first = records[0]
    extra = {"groups": [r.get("group") for r in records]}
    if all("counts" in r for r in records):
        extra["counts"] = summed([r["counts"] for r in records], SHARED_COUNTS)
    if all("throughput" in r for r in records):
        rates = [r["throughput"] for r in records]
        extra["throughput"] = throughput(*(sum(t[k] for t in rates) for k in ("images", "seconds")))
    write_provenance(
        out_dir,
        stage=first["stage"],
        params=first["params"],
        inputs=[Path(p) / INDEX for p in parts],
        seed=first.get("seed"),
        device=first.get("device", "cpu"),
        extra=extra,
    )
    return summary


def summed(records: list[dict], shared: Sequence[str]) -> dict:
    """Numbers added over the records; ``shared`` keys taken from the first."""
    out = dict(records[0])
    for key, value in records[0].items():
        if key not in shared and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = sum(r[key] for r in records)
    return out
