"""Images per second: xaiseg preprocess vs a plain one-process pydicom/Pillow loop.

Both decode every file and resize it to ``--size``; xaiseg also normalises, checks,
and writes safetensors shards, with decoding in ``--workers`` processes overlapping the
writes. Run by hand (not in the test suite):

    python benchmarks/preprocess_throughput.py --dicom .cache/shared/dicom_corpus \
        --lgg .cache/shared/lgg_mri_subset --workers 2
    python benchmarks/preprocess_throughput.py --synthetic 10000   # a 10k-row sheet
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from PIL import Image

from xaiseg.data.preprocess import preprocess
from xaiseg.io.sheet import write_sheet
from xaiseg.settings import PreprocessSettings

SKIP_SUFFIXES = {".txt", ".md", ".json", ".icc", ".gz", ".dump"}


def plain_loop(files: list[Path], size: int) -> int:
    """The baseline: decode with pydicom or Pillow, resize with Pillow, one process."""
    done = 0
    for path in files:
        try:
            if path.suffix.lower() in (".tif", ".tiff", ".png"):
                array = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
            else:
                array = pydicom.dcmread(path).pixel_array.astype(np.float32)
                array = array.reshape(-1, *array.shape[-2:])[0] if array.ndim > 2 else array
        except Exception:
            continue
        Image.fromarray(array).resize((size, size), Image.BILINEAR)
        done += 1
    return done


def xaiseg_run(files: list[Path], size: int, workers: int, channels: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        sheet = pd.DataFrame(
            {
                "sample_id": [f"f{i}" for i in range(len(files))],
                "image": [str(f) for f in files],
                "label": ["a", "b"] * (len(files) // 2) + ["a"] * (len(files) % 2),
                "mask": "",
                "group": "",
                "split": "",
            }
        )
        write_sheet(Path(tmp) / "sheet.tsv", sheet)
        # The files' own folder is a permitted root: sheets may not read outside theirs.
        root = os.path.commonpath([str(f.parent) for f in files])
        settings = PreprocessSettings(
            classes=("a", "b"), image_size=size, channels=channels, on_bad_input="skip",
            roots=(root,),
        )  # fmt: skip
        return preprocess(Path(tmp) / "sheet.tsv", Path(tmp) / "out", settings, workers)["kept"]


def measure(name: str, files: list[Path], size: int, workers: int, channels: int) -> None:
    tick = time.perf_counter()
    n_plain = plain_loop(files, size)
    plain = n_plain / (time.perf_counter() - tick)
    print(f"{name}: {len(files)} files | plain loop: {n_plain} decoded, {plain:.1f} img/s")
    for n in sorted({1, workers}):
        tick = time.perf_counter()
        kept = xaiseg_run(files, size, n, channels)
        rate = kept / (time.perf_counter() - tick)
        print(f"  xaiseg, {n} worker(s): {kept} kept, {rate:.1f} img/s, ratio {rate / plain:.2f}")


def synthetic_pngs(folder: Path, n: int, side: int = 256) -> list[Path]:
    """``n`` grey PNGs of ``side`` pixels: seeded noise with a bright disc in half."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:side, :side]
    files = []
    for i in range(n):
        image = rng.normal(80, 20, (side, side))
        if i % 2:
            cy, cx = rng.integers(side // 4, 3 * side // 4, 2)
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < (side // 12) ** 2] += 100
        path = folder / f"d{i // 1000:03d}" / f"img{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicom", type=Path, help="extracted dicom_corpus folder")
    parser.add_argument("--lgg", type=Path, help="extracted lgg_mri_subset folder")
    parser.add_argument("--synthetic", type=int, help="also N generated 256 x 256 PNGs")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.dicom = args.dicom.resolve() if args.dicom else None
    args.lgg = args.lgg.resolve() if args.lgg else None
    warnings.simplefilter("ignore")
    if args.dicom:
        files = sorted(
            p
            for p in args.dicom.rglob("*")
            if p.is_file() and p.suffix not in SKIP_SUFFIXES and p.name not in {"README", "LICENSE"}
        )
        measure("DICOM corpus", files, args.size, args.workers, channels=1)
    if args.lgg:
        files = sorted(p for p in args.lgg.glob("*/*.tif") if not p.name.endswith("_mask.tif"))
        measure("LGG subset", files, args.size, args.workers, channels=1)
    if args.synthetic:
        with tempfile.TemporaryDirectory(prefix="xaiseg-pngs-") as tmp:
            files = synthetic_pngs(Path(tmp), args.synthetic)
            measure(f"{args.synthetic} PNGs", files, args.size, args.workers, channels=1)


if __name__ == "__main__":
    main()
