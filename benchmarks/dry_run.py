"""How long ``snakemake --dry-run`` takes to build the DAG for large sample sheets.

Writes a sheet of N rows (images spread over folders of 1,000 files, one tiny PNG
each, half with a lesion label) and times a dry run of the whole workflow on it, for
every N given. Run by hand from the repository root (not in the test suite):

    .venv/bin/python benchmarks/dry_run.py --rows 1000 10000 100000
    .venv/bin/python benchmarks/dry_run.py --rows 100000 --group-size 2000

With ``--group-size`` the stages run in shard groups: before preprocessing has run, the
dry run plans the jobs up to the plan checkpoint (the groups are counted from it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PNG = bytes.fromhex(  # a valid 8 x 8 black PNG: the dry run only checks that files exist
    "89504e470d0a1a0a0000000d4948445200000008000000080800000000e164e157"
    "0000000c49444154789c6360a00e0000004800012eb83c7e0000000049454e44ae426082"
)


def write_sheet(folder: Path, rows: int) -> Path:
    lines = ["sample_id\timage\tlabel\tgroup"]
    for i in range(rows):
        image = folder / f"d{i // 1000:04d}" / f"img{i:06d}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(PNG)
        label = "lesion" if i % 2 else "normal"
        lines.append(f"s{i:06d}\t{image.relative_to(folder)}\t{label}\tp{i // 20:05d}")
    sheet = folder / "sheet.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


def dry_run(sheet: Path, work: Path, group_size: int = 0) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the snakemake process) of one dry run."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())  # the demo's stages
    config["run"] = "bench"
    config["group_size"] = group_size or None
    config["data"] = {"source": "sheet", "sheet": str(sheet), "classes": ["normal", "lesion"]}
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    before = os.times()
    tick = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "all", "--cores", "2",
         "--configfile", str(work / "bench.yaml"), "--directory", str(work),
         "--snakefile", str(ROOT / "Snakefile")],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - tick
    after = os.times()
    if result.returncode:
        raise SystemExit(f"dry run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--group-size", type=int, default=0, help="config group_size")
    args = parser.parse_args()
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="xaiseg-dry-") as tmp:
            data, work = Path(tmp) / "data", Path(tmp) / "work"
            data.mkdir()
            work.mkdir()
            sheet = write_sheet(data, rows)
            wall, cpu = dry_run(sheet, work, args.group_size)
            print(f"{rows:>7} rows: dry run {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)


if __name__ == "__main__":
    main()
