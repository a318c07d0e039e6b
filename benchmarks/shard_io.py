"""The saliency stage's reading and writing alone: shards of float32 images read (their
bytes verified, then mapped) and every pixel touched, then maps packed to float16 and
written, for ``--images`` synthetic 128 px images (the GPU stages' I/O floor on this CPU).

    .venv/bin/python benchmarks/shard_io.py [--images 4096]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "device"))

from throughput import synthetic_data

from xaiseg.data.artifacts import map_rows, pack_maps
from xaiseg.data.shards import ShardStore, ShardWriter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="xaiseg_io_"))
    store = ShardStore(synthetic_data(root / "data", args.images, 128))
    start = time.perf_counter()
    shards = list(store.iter_shards())
    read = time.perf_counter() - start
    start = time.perf_counter()
    total = sum(float(s["image"].sum()) for s in shards)  # every page touched
    touched = time.perf_counter() - start
    writer = ShardWriter(root / "maps", 256)
    start = time.perf_counter()
    for shard in shards:
        for row in map_rows(*pack_maps(shard["image"])):
            writer.add(row)
    writer.close({"samples": []})
    written = time.perf_counter() - start
    print(f"{args.images} images: read {read:.2f} s, touched {touched:.2f} s, "
          f"packed and written {written:.2f} s ({total:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
