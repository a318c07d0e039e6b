"""``xaiseg predict``: images per second, and peak memory against the number of inputs.

Writes ``--images`` synthetic 256 x 256 PNGs, exports a package of the demo's networks
(a ResNet-18 at half width, MONAI's default U-Net; untrained: the cost is the same),
and runs predict on the first quarter and on all of them, each in a fresh process, so
that the peak resident memory of each can be compared: streaming keeps it flat. Run by
hand (not in the test suite):

    python benchmarks/predict_throughput.py --images 800 --workers 2
    python benchmarks/predict_throughput.py --images 800 --device cuda --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from xaiseg.models import NetworkSpec, build_network, save_network
from xaiseg.predict import export_model
from xaiseg.provenance import write_json, write_provenance
from xaiseg.settings import PreprocessSettings

CLASSES = ("normal", "lesion")


def make_package(folder: Path, size: int) -> Path:
    run = folder / "run"
    settings = PreprocessSettings(image_size=size)
    (run / "data").mkdir(parents=True)
    write_provenance(run / "data", stage="preprocess", params=asdict(settings))
    classifier = NetworkSpec("classifier", "resnet18", 1, CLASSES, 2, {"widen_factor": 0.5})
    save_network(build_network(classifier), classifier, run / "classifier")
    write_json(run / "classifier" / "metrics.json", {"val_threshold": 0.5})
    write_provenance(run / "classifier", stage="classifier", params={})
    segmenter = NetworkSpec("segmenter", "unet", 1, CLASSES, 2, {})
    save_network(build_network(segmenter), segmenter, run / "segmenter" / "pseudo-x")
    write_provenance(run / "segmenter" / "pseudo-x", stage="segmenter", params={})
    export_model(run, "pseudo-x", folder / "model")
    return folder / "model"


def write_images(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        pixels = (rng.random((256, 256)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:06d}.png")


MEASURE = """
import json, resource, sys, time
from xaiseg.predict import predict
started = time.perf_counter()
table = predict(sys.argv[1], sys.argv[2:-4], sys.argv[-4], device=sys.argv[-3],
                batch_size=int(sys.argv[-2]), workers=int(sys.argv[-1]))
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"inputs": len(table), "seconds": seconds, "peak_mb": peak}))
"""


def measure(model: Path, files: list[Path], out: Path, args) -> dict:
    command = [sys.executable, "-c", MEASURE, str(model), *map(str, files), str(out)]
    command += [args.device, str(args.batch_size), str(args.workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--size", type=int, default=64, help="the package's image_size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = make_package(folder, args.size)
        write_images(folder / "images", args.images)
        files = sorted((folder / "images").glob("*.png"))
        for share in (files[: len(files) // 4], files):
            result = measure(model, share, folder / f"out{len(share)}", args)
            rate = result["inputs"] / result["seconds"]
            print(
                f"{result['inputs']:6d} PNGs 256x256 -> {args.size} px, {args.device},"
                f" batch {args.batch_size}, {args.workers} workers: {rate:7.1f} images/s,"
                f" peak RSS {result['peak_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
