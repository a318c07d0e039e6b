"""Per-stage job counts and times of a run, from the ``benchmark:`` files Snakemake
writes (one TSV per job, seconds in the first column). Standard library only: the
workflow prints it at the end of every run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

# Benchmark names that are one stage although their first word is generic.
WHOLE_NAMES = ("train_", "extract_", "layout_")


def stage_of(benchmark: Path) -> str:
    """``saliency_gradcam.tsv`` -> ``saliency``; ``train_classifier.tsv`` whole."""
    stem = benchmark.stem
    return stem if stem.startswith(WHOLE_NAMES) else stem.split("_")[0]


def stage_times(benchmarks: str | Path) -> list[tuple[str, int, float]]:
    """(stage, jobs, wall seconds summed), slowest first."""
    totals: dict[str, list[float]] = {}
    for path in sorted(Path(benchmarks).glob("*.tsv")):
        rows = list(csv.DictReader(path.open(), delimiter="\t"))
        if rows and rows[-1].get("s"):
            totals.setdefault(stage_of(path), []).append(float(rows[-1]["s"]))
    table = [(stage, len(times), sum(times)) for stage, times in totals.items()]
    return sorted(table, key=lambda row: (-row[2], row[0]))


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def stage_lines(benchmarks: str | Path) -> list[str]:
    """One line per stage: its jobs and their summed wall time."""
    table = stage_times(benchmarks)
    width = max((len(stage) for stage, _, _ in table), default=0)
    lines = [
        f"  {stage:<{width}}  {jobs:>3} job{'s' if jobs > 1 else ' '}  {format_duration(total)}"
        for stage, jobs, total in table
    ]
    if table:
        total = sum(t for _, _, t in table)
        lines.append(
            f"  {'all':<{width}}  {sum(j for _, j, _ in table):>3} jobs  {format_duration(total)}"
        )
    return lines


def saliency_rates(saliency: str | Path) -> list[str]:
    """One line per saliency map: images per second of its computation (start-up and
    loading excluded), from the ``throughput`` its provenance records."""
    lines = []
    for path in sorted(Path(saliency).glob("*/provenance.json")):
        record = json.loads(path.read_text())
        rate = record.get("throughput", {}).get("images_per_second")
        if rate:
            images = record["throughput"]["images"]
            lines.append(
                f"  {path.parent.name:<20} {rate:>8.1f} images/s"
                f"  ({images} images, {record.get('device', '?')})"
            )
    return lines
