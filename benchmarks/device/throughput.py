"""How far each GPU stage is from the card's limit.

For each stage, run through the stage's own code end to end (shards read, maps or
predictions written, checkpoints saved): images per second; the share of that wall time
the GPU is busy (the profiler's device time over the wall time of a second, profiled
pass); and the ratio to a bare loop of the same network and batch with the data already
on the card (forward and backward for maps and training, forward for prediction). The
networks are the real-data block's (ResNet-18 at half width, the counterfactual's
autoencoder, the MONAI U-Net) with random weights, on synthetic 128 px images: the cost
of a pass does not depend on what the weights learnt.

    python benchmarks/device/throughput.py [--images 8192] [--size 128] [--out table.md]

On a CPU machine it runs too (no busy share), with ``--images 256`` for a look.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from xaiseg.data.shards import ShardWriter
from xaiseg.devices import autocast
from xaiseg.models import NetworkSpec, build_network, load_network, save_network
from xaiseg.provenance import write_json
from xaiseg.saliency.compute import compute_saliency
from xaiseg.settings import MapSettings, SaliencySettings, SegmenterSettings
from xaiseg.train.segmenter import predict_masks, train_segmenter

CLASSES = ("normal", "lesion")
MAPS = {  # name: (settings, images per bare pass per image: IG runs n_steps passes)
    "gradcam": (MapSettings(target_layer="layer3"), 1),
    "hirescam": (MapSettings(target_layer="layer3"), 1),
    "counterfactual": (MapSettings(model="counterfactual"), 0),
    "lrp": (MapSettings(options={"composite": "epsilon_alpha2_beta1_flat"}), 1),
    "integrated_gradients": (MapSettings(options={"n_steps": 32}), 32),
}


def synthetic_data(folder: Path, n: int, size: int) -> Path:
    """``n`` grey images with a bright disc in every other one (its mask beside it)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    writer = ShardWriter(folder, 256)
    samples = []
    for i in range(n):
        image = rng.normal(0.3, 0.05, (1, size, size)).astype(np.float32)
        mask = np.zeros((1, size, size), np.uint8)
        if i % 2:
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            mask[0] = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 10) ** 2
            image[mask == 1] += 0.4
        split = ("train", "train", "train", "val")[i % 4]
        writer.add(
            {"image": image, "mask": mask, "label": np.int64(i % 2), "has_mask": np.uint8(1)}
        )
        samples.append({"sample_id": f"s{i:06d}", "label": CLASSES[i % 2], "label_index": i % 2,
                        "split": split, "group": f"g{i}", "has_mask": True})  # fmt: skip
    writer.finish()
    index = {"classes": list(CLASSES), "image_size": [size, size], "channels": 1,
             "samples": samples, "shards": writer.shards, "shard_size": 256}  # fmt: skip
    write_json(folder / "index.json", index)
    return folder


def model_folders(root: Path) -> dict[str, Path]:
    specs = {
        "classifier": NetworkSpec("classifier", "resnet18", 1, CLASSES, 2, {"widen_factor": 0.5}),
        "counterfactual": NetworkSpec("reconstructor", "autoencoder", 1, CLASSES, 2,
                                      {"residual_channel": 0, "residual_direction": "bright"}),
    }  # fmt: skip
    folders = {}
    for name, spec in specs.items():
        torch.manual_seed(0)
        save_network(build_network(spec), spec, root / name)
        folders[name] = root / name
    return folders


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def busy_share(run: Callable[[], object], device: torch.device) -> float | None:
    """The profiler's summed device time over the wall time of one more pass."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        wall = timed(run, device)
    busy_us = sum(e.self_device_time_total for e in prof.key_averages())
    return busy_us / 1e6 / wall


def bare_rate(
    model: torch.nn.Module, batch: int, size: int, device, precision, backward: bool
) -> float:
    """Images per second of a loop over one batch already on the device."""
    images = torch.rand(batch, 1, size, size, device=device, requires_grad=backward)

    def once() -> None:
        with autocast(device, precision):
            out = model(images)
        if backward:
            out.float().sum().backward()

    for _ in range(3):
        once()
    repeats = 20
    seconds = timed(lambda: [once() for _ in range(repeats)], device)
    return batch * repeats / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-batches", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None)
    parser.add_argument("--stages", nargs="+", default=["training", "prediction", "saliency"])
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="xaiseg_bench_"))
    data = synthetic_data(root / "data", args.images, args.size)
    rows = Rows()
    for stage in args.stages:  # the unmeasured first, where a call may run out of time
        STAGES[stage](rows, data, root, device, args)
    title = f"{args.images} images, {args.size} px, {args.precision}, {describe_device(device)}"
    text = "\n".join([title, "", *rows.lines])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


class Rows:
    """The table's lines, each printed as soon as it is measured."""

    def __init__(self) -> None:
        self.lines = ["| stage | images/s | GPU busy | / bare loop |", "|---|---|---|---|"]

    def append(self, row: tuple[str, float, float | None, float]) -> None:
        stage, rate, busy, ratio = row
        share = "n/a" if busy is None else f"{busy:.0%}"
        self.lines.append(f"| {stage} | {rate:,.0f} | {share} | {ratio:.2f} |")
        print(self.lines[-1], flush=True)


def saliency_rows(rows: Rows, data: Path, root: Path, device, args) -> None:
    """Each map of ``MAPS`` through ``compute_saliency``, against a bare loop."""
    folders = model_folders(root)
    settings = SaliencySettings(maps={k: v for k, (v, _) in MAPS.items()},
                                device=str(device), precision=args.precision)  # fmt: skip
    for name, (_, per_image) in MAPS.items():
        model_dir = folders["counterfactual" if name == "counterfactual" else "classifier"]
        n = args.images // (8 if per_image > 1 else 1)
        subset = data if n == args.images else synthetic_data(root / f"data_{n}", n, args.size)

        def run(name=name, model_dir=model_dir, subset=subset) -> None:
            compute_saliency(subset, model_dir, root / "maps" / name, name, settings)

        run()  # warm-up: kernels chosen, pages cached
        rate = n / timed(run, device)
        busy = busy_share(run, device)
        model = load_network(model_dir)[0].to(device)
        batch = 256 if device.type == "cuda" else 32
        bare = bare_rate(model, batch, args.size, device, args.precision, per_image > 0)
        rows.append((f"saliency {name}", rate, busy, rate * max(per_image, 1) / bare))


def describe_device(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def training_rows(rows: Rows, data: Path, root: Path, device, args) -> None:
    """The segmenter's training (train split, all epochs, val each epoch, predictions
    written), against a bare step loop; its rate printed before the profiled pass."""
    n_train = sum(1 for i in range(args.images) if i % 4 != 3)
    for batch in args.train_batches:
        settings = SegmenterSettings(
            epochs=args.epochs, batch_size=batch, predict_batch_size=256, patience=100,
            device=str(device), precision=args.precision, gate_threshold=None,
        )  # fmt: skip
        out = root / f"seg_{batch}"
        seconds = timed(lambda s=settings, o=out: train_segmenter(data, o, s), device)
        rate = n_train * args.epochs / seconds
        print(f"segmenter training, batch {batch}: {rate:,.0f} images/s", flush=True)
        one_epoch = dataclasses.replace(settings, epochs=1)
        busy = busy_share(
            lambda s=one_epoch, o=root / f"seg_{batch}_profiled": train_segmenter(data, o, s),
            device,
        )
        model = build_network(NetworkSpec("segmenter", "unet", 1, CLASSES, 2)).to(device)
        model.to(memory_format=torch.channels_last) if device.type == "cuda" else None
        optimizer = torch.optim.AdamW(model.parameters())
        images = torch.rand(batch, 1, args.size, args.size, device=device)

        def step(model=model, optimizer=optimizer, images=images) -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, args.precision):
                loss = model(images).float().mean()
            loss.backward()
            optimizer.step()

        for _ in range(3):
            step()
        bare = batch * 20 / timed(lambda step=step: [step() for _ in range(20)], device)
        rows.append((f"segmenter training, batch {batch}", rate, busy, rate / bare))


def prediction_rows(rows: Rows, data: Path, root: Path, device, args) -> None:
    """The segmenter's prediction (``predict_masks``), against a bare forward loop."""
    model = build_network(NetworkSpec("segmenter", "unet", 1, CLASSES, 2)).to(device).eval()
    images = torch.rand(args.images, 1, args.size, args.size)

    def predict() -> None:
        predict_masks(model, images, device, args.precision, batch_size=256)

    predict()
    rate = args.images / timed(predict, device)
    busy = busy_share(predict, device)
    with torch.no_grad():
        bare = bare_rate(model, 256, args.size, device, args.precision, backward=False)
    rows.append(("segmenter prediction", rate, busy, rate / bare))


STAGES = {"training": training_rows, "prediction": prediction_rows, "saliency": saliency_rows}

if __name__ == "__main__":
    main()
