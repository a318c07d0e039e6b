"""Peak resident memory of every stage at 1x and 10x the demo's size.

Each stage runs as its own ``python -m xaiseg`` process, as the workflow runs it; its
peak RSS comes from ``wait4`` (that process alone). Streaming stages must stay flat:
the 10x run's peak below 1.5x the 1x run's. Run by hand (minutes, not a test):

    python benchmarks/stage_memory.py --out .cache/bench_memory --scales 1 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from xaiseg import settings as S

SRC = Path(__file__).resolve().parents[1] / "src"


def run_stage(args: list[str], log: Path) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one stage process."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    tick = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "xaiseg", *args], stdout=handle, stderr=handle, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage failed: {args[0]} (see {log})")
    return usage.ru_maxrss / 1024, time.perf_counter() - tick


def stages(run: Path, n_images: int) -> list[tuple[str, list[str]]]:
    js = S.to_json
    data = str(run / "data")
    training = {"epochs": 1, "batch_size": 32, "device": "cpu"}
    classifier = S.ClassifierSettings(network_options={"widen_factor": 0.5}, **training)
    recipe = S.RecipeJob(S.RecipeSettings(name="gradcam-otsu", maps=("gradcam",)), 0.0)
    saliency = S.SaliencySettings(maps={"gradcam": S.MapSettings(target_layer="layer2")})
    return [
        (
            "demo-data",
            [
                "demo-data",
                "--out",
                str(run / "demo"),
                "--settings",
                js(S.DemoSettings(n_images=n_images)),
            ],
        ),
        (
            "preprocess",
            [
                "preprocess",
                "--sheet",
                str(run / "demo" / "sheet.tsv"),
                "--out",
                str(run),
                "--settings",
                js(S.PreprocessSettings(image_size=64)),
            ],
        ),
        (
            "train-classifier",
            [
                "train-classifier",
                "--data",
                data,
                "--out",
                str(run / "classifier"),
                "--settings",
                js(classifier),
            ],
        ),
        (
            "saliency",
            [
                "saliency",
                "--data",
                data,
                "--model",
                str(run / "classifier"),
                "--out",
                str(run / "saliency" / "gradcam"),
                "--map",
                "gradcam",
                "--settings",
                js(saliency),
            ],
        ),
        (
            "masks",
            [
                "masks",
                "--data",
                data,
                "--saliency",
                f"gradcam={run / 'saliency' / 'gradcam'}",
                "--classifier",
                str(run / "classifier"),
                "--out",
                str(run / "masks"),
                "--settings",
                js(recipe),
            ],
        ),
        (
            "train-segmenter",
            [
                "train-segmenter",
                "--data",
                data,
                "--masks",
                str(run / "masks"),
                "--out",
                str(run / "segmenter"),
                "--settings",
                js(S.SegmenterSettings(**training)),
            ],
        ),
        (
            "evaluate",
            [
                "evaluate",
                "--data",
                data,
                "--evaluate",
                f"gradcam-otsu:pseudo_mask:{run / 'masks'}",
                f"gradcam-otsu:segmenter:{run / 'segmenter' / 'predictions'}",
                "--saliency",
                f"gradcam={run / 'saliency' / 'gradcam'}",
                "--out",
                str(run / "eval"),
            ],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/bench_memory"))
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--base", type=int, default=320, help="images at scale 1 (the demo)")
    args = parser.parse_args()
    results: dict[str, dict[int, tuple[float, float]]] = {}
    for scale in args.scales:
        run = args.out / f"x{scale}"
        run.mkdir(parents=True, exist_ok=True)
        for name, stage_args in stages(run, args.base * scale):
            results.setdefault(name, {})[scale] = run_stage(stage_args, run / f"{name}.log")
            print(
                f"x{scale} {name}: {results[name][scale][0]:.0f} MiB, "
                f"{results[name][scale][1]:.1f} s",
                flush=True,
            )
    low, high = min(args.scales), max(args.scales)
    print(
        f"\n| stage | peak RSS x{low} (MiB) | peak RSS x{high} (MiB) | ratio "
        f"| s x{low} | s x{high} |"
    )
    print("|---|---|---|---|---|---|")
    for name, by_scale in results.items():
        ratio = by_scale[high][0] / by_scale[low][0]
        print(
            f"| {name} | {by_scale[low][0]:.0f} | {by_scale[high][0]:.0f} | {ratio:.2f} | "
            f"{by_scale[low][1]:.1f} | {by_scale[high][1]:.1f} |"
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
