"""Images per second through the trainers' augmentation (flips, turns, affine,
contrast, noise), in the main process and in loader workers. Run by hand:

    .venv/bin/python benchmarks/loader_workers.py --images 512 --size 128 --workers 0 1 3
"""

from __future__ import annotations

import argparse
import time

import torch

from xaiseg.train import data
from xaiseg.train.loop import reseed_epoch


def images_per_second(images: torch.Tensor, workers: int, batch_size: int) -> float:
    dataset = data.dict_dataset({"image": images}, data.augmentation(["image"]))
    data.loader_workers = lambda: workers
    loader = data.training_loader(dataset, batch_size, seed=0)
    reseed_epoch(loader, 0, 1)
    start = time.perf_counter()
    for _ in loader:
        pass
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = torch.rand(args.images, args.channels, args.size, args.size)
    for workers in args.workers:
        rate = images_per_second(images, workers, args.batch_size)
        print(f"{workers} workers: {rate:7.1f} images/s ({args.size} px, {args.channels} ch)")


if __name__ == "__main__":
    main()
