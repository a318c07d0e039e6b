"""Which images a figure or a check looks at: a seeded draw, the same on every rerun."""

from __future__ import annotations

import numpy as np

from xaiseg.data.shards import ShardStore


def lesion_images(store: ShardStore, n_images: int, seed: int) -> list[int]:
    """Rows of test images with the finding and a mask; failing that, val ones, then
    any with a lesion, then any image at all (a dataset without masks still draws)."""
    finding = len(store.index["classes"]) - 1
    samples = store.samples
    positive = [i for i, s in enumerate(samples) if s["label_index"] == finding and s["has_mask"]]
    pools = (
        [i for i in positive if samples[i]["split"] == "test"],
        [i for i in positive if samples[i]["split"] == "val"],
        positive,
        list(range(len(samples))),
    )
    pool = next((p for p in pools if p), [])
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, size=min(n_images, len(pool)), replace=False).tolist())
