"""Each saliency method's time on the same model and batch, against Grad-CAM's.

The real-data block's classifier (ResNet-18 at half width, one grey channel, 128 px) with
random weights: the cost of a map does not depend on what the weights learnt. Median
of ``--repeats`` timed batches after one warm-up, one thread unless told.

    .venv/bin/python benchmarks/saliency_cost.py [--batch 32] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from xaiseg.models.factory import CLASSIFIERS
from xaiseg.saliency import METHODS

CASES = {
    "gradcam": ("gradcam", "layer3", {}),
    "hirescam": ("hirescam", "layer3", {}),
    "lrp (epsilon_alpha2_beta1_flat)": ("lrp", None, {"composite": "epsilon_alpha2_beta1_flat"}),
    "lrp (epsilon_plus_flat)": ("lrp", None, {"composite": "epsilon_plus_flat"}),
    "lrp (epsilon)": ("lrp", None, {"composite": "epsilon"}),
}


def seconds(run, repeats: int) -> float:
    run()  # warm-up: allocations, one-off set-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = CLASSIFIERS["resnet18"](1, 2, 2, widen_factor=0.5).to(device).eval()
    images = torch.rand(args.batch, 1, args.size, args.size, device=device)
    rows = []
    for name, (method, layer, options) in CASES.items():
        saliency = METHODS[method](model, layer, **options)
        rows.append((name, seconds(lambda s=saliency: s(images, 1), args.repeats)))
    base = rows[0][1]
    print(f"batch {args.batch} x 1 x {args.size}^2, {args.threads} thread(s), {args.device}")
    print("| method | s per batch | images/s | / Grad-CAM |\n|---|---|---|---|")
    for name, took in rows:
        print(f"| {name} | {took:.3f} | {args.batch / took:.0f} | {took / base:.1f}x |")


if __name__ == "__main__":
    main()
