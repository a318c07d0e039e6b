"""CPU seconds each stage's process spends before any work: starting Python and
importing the module its command runs (``xaiseg.codehash.STAGE_MODULES``), best of
``--repeat`` fresh processes. Run by hand (not in the test suite):

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
    torch = min(cpu_seconds("import torch") for _ in range(args.repeat))
    print(f"{'python alone':<16} {floor:5.2f} s CPU")
    print(f"{'import torch':<16} {torch:5.2f} s CPU")
    for stage, module in STAGE_MODULES.items():
        best = min(cpu_seconds(f"import {module}") for _ in range(args.repeat))
        print(f"{stage:<16} {best:5.2f} s CPU  ({module})")


if __name__ == "__main__":
    main()
