"""Where a GPU job's start goes: wall and CPU seconds of each phase of a saliency job
before its first batch, in a fresh process, then the slowest imports.

Measured as a job starts (``cli.main``): MONAI's unused optional packages marked
absent first (``xaiseg.lean_imports``; ``XAISEG_OPTIONAL_IMPORTS=1`` measures without).
Phases: the interpreter up to this script; importing the stage's module; the device
(CUDA's context: the first tensor on the card); seeding (torch's deterministic mode);
loading the model; reading the first shard; the first batch of Grad-CAM maps (kernels
loaded and chosen). Run by hand, on the device machine and here:

    python benchmarks/startup_phases.py [--imports 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

LEAN = "import xaiseg.lean_imports as L; L.skip_unused_optional_imports(); "
PHASES = r"""
import os, sys, time, tempfile
from pathlib import Path
marks = [("interpreter", time.perf_counter(), os.times())]
def mark(name):
    marks.append((name, time.perf_counter(), os.times()))
from xaiseg.lean_imports import skip_unused_optional_imports
skip_unused_optional_imports()  # as every job does first (cli.main)
import xaiseg.saliency.compute as compute
mark("import the stage")
import torch
from xaiseg.devices import resolve_device
device = resolve_device("auto")
torch.zeros(1, device=device)
mark("device ready")
from xaiseg.provenance import seed_everything
seed_everything(0)
mark("seeding")
from xaiseg.models import NetworkSpec, build_network
spec = NetworkSpec("classifier", "resnet18", 1, ("normal", "lesion"), 2, {"widen_factor": 0.5})
model = build_network(spec).to(device).eval()
mark("model built")
from xaiseg.data.shards import ShardWriter, ShardStore
import numpy as np
folder = Path(tempfile.mkdtemp())
writer = ShardWriter(folder, 256)
for _ in range(256):
    writer.add({"image": np.random.rand(1, 128, 128).astype(np.float32)})
writer.close({"samples": []})
t = time.perf_counter()
shard = next(ShardStore(folder).iter_shards())
mark("first shard read")
from xaiseg.saliency import METHODS
maps = METHODS["gradcam"](model, "layer3")(shard["image"].to(device), 1)
maps.cpu()
mark("first batch of maps")
start = marks[0]
print(f"{'phase':<22} {'wall s':>7} {'CPU s':>7}")
for (name, wall, cpu), (_, wall0, cpu0) in zip(marks[1:], marks[:-1]):
    used = (cpu.user + cpu.system) - (cpu0.user + cpu0.system)
    print(f"{name:<22} {wall - wall0:7.2f} {used:7.2f}")
cpu = marks[-1][2]
print(f"{'total after start':<22} {marks[-1][1] - start[1]:7.2f} {cpu.user + cpu.system:7.2f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=15, help="slowest imports shown")
    args = parser.parse_args()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    print(f"python alone: {time.perf_counter() - started:.2f} s wall")
    subprocess.run([sys.executable, "-c", PHASES], check=True, env=os.environ)
    # -X importtime writes "self | cumulative | name" lines to stderr, in microseconds.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", LEAN + "import xaiseg.saliency.compute"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    print(f"\nslowest imports (cumulative s), of {len(rows)}:")
    for cumulative, name in sorted(rows, reverse=True)[: args.imports]:
        print(f"{cumulative / 1e6:7.2f} {name}")


if __name__ == "__main__":
    main()
