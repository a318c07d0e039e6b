"""CPU seconds each stage's process spends before any work: starting Python,
importing the module its command runs (``xaiseg.codehash.STAGE_MODULES``) and seeding
(torch's deterministic mode), best of ``--repeat`` fresh processes. The floors: torch
alone, and torch with MONAI (whose package import loads all of its submodules).
Run by hand (not in the test suite):

    .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from xaiseg.codehash import STAGE_MODULES


def cpu_seconds(code: str) -> float:
    before = os.times()
    subprocess.run([sys.executable, "-c", code], check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    floor = min(cpu_seconds("pass") for _ in range(args.repeat))
    print(f"{'python alone':<16} {floor:5.2f} s CPU")
    for name, code in (("import torch", "import torch"), ("torch + monai", "import monai")):
        best = min(cpu_seconds(code) for _ in range(args.repeat))
        print(f"{name:<16} {best:5.2f} s CPU")
    # Stages that run torch seed it; the demo and layout stages load no torch.
    seed = (
        "import sys; from xaiseg.provenance import seed_everything;"
        " 'torch' in sys.modules and seed_everything(0)"
    )
    for stage, module in STAGE_MODULES.items():
        best = min(cpu_seconds(f"import {module}; {seed}") for _ in range(args.repeat))
        print(f"{stage:<16} {best:5.2f} s CPU  ({module})")


if __name__ == "__main__":
    main()
