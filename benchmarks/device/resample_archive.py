"""Repack an image archive (TIFF/PNG images and masks) at a smaller size, for a device
machine whose upload limit (64 MiB) is below the archive's size.

Images are area-averaged and rounded to 8 bit, masks resampled nearest, by the same
MONAI ``Resize`` that ``xaiseg preprocess`` applies; a run whose ``image_size`` is the
new size therefore sees the same masks and images within half a grey level.

    python benchmarks/device/resample_archive.py ../shared/data/lgg_mri_dev.tar.xz \
        .gpu/lgg_mri_dev.tar.xz --size 128
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import numpy as np
from monai.transforms import Resize
from PIL import Image

from xaiseg.io.raster import RASTER_SUFFIXES


def resample_file(data: bytes, name: str, size: int) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img)
        fmt = img.format
    channels = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    mode = "nearest" if "mask" in Path(name).stem.lower() else "area"
    small = Resize((size, size), mode=mode)(channels.astype(np.float32))
    small = np.clip(np.rint(np.asarray(small)), 0, 255).astype(np.uint8)
    out = small[0] if array.ndim == 2 else np.moveaxis(small, 0, -1)
    buffer = io.BytesIO()
    Image.fromarray(out).save(buffer, format=fmt)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    args.target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.source) as src, tarfile.open(args.target, "w:xz", preset=9) as dst:
        for member in src:
            if not member.isfile():
                dst.addfile(member)
                continue
            data = src.extractfile(member).read()
            if member.name.lower().endswith(RASTER_SUFFIXES):
                data = resample_file(data, member.name, args.size)
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


if __name__ == "__main__":
    main()
