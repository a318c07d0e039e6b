"""The run's headline, read back from its ``summary.csv``: the weak segmenter chosen on
val (test never chooses), its test Dice with the patient interval, the supervised bound,
and where everything is. Standard library only: the workflow prints it at the end of
every run, and ``xaiseg export`` picks the headline's segmenter by the same rule."""

from __future__ import annotations

import csv
from pathlib import Path

from xaiseg.run_plan import read_plan
from xaiseg.runtimes import saliency_rates, stage_lines

# The summary's `setting` column: what supervision a row's model learnt from.
NO_MASKS, ALL_MASKS = "no masks", "all masks"


def summary_rows(run: str | Path) -> list[dict[str, str]]:
    path = Path(run) / "summary.csv"
    return list(csv.DictReader(path.open())) if path.is_file() else []


def _dice(row: dict[str, str]) -> float:
    return float(row["dice"] or 0)


def best_row(rows: list[dict[str, str]], split: str, model: str, setting: str) -> dict | None:
    """The row of best Dice among ``split``'s rows of this model and setting."""
    found = [r for r in rows if (r["split"], r["model"], r["setting"]) == (split, model, setting)]
    return max(found, key=_dice) if found else None


def headline_recipe(rows: list[dict[str, str]]) -> str | None:
    """The recipe of the headline weak segmenter: best val Dice among the no-masks
    segmenter rows. None when the table has no such row."""
    chosen = best_row(rows, "val", "segmenter", NO_MASKS)
    return chosen["recipe"] if chosen else None


def headline_lines(run: str | Path) -> list[str]:
    """What a person wants at the end of a run (nothing before the summary exists)."""
    rows = summary_rows(run)
    if not rows:
        return []
    lines = []
    recipe = headline_recipe(rows)
    for r in rows:
        weak = (r["model"], r["setting"]) == ("segmenter", NO_MASKS)
        if weak and r["split"] == "test" and r["recipe"] == recipe:
            lines.append(
                f"headline (best val, no masks): {recipe} segmenter, test Dice"
                f" {_dice(r):.3f} (95% CI {float(r['dice_ci_low']):.3f} to"
                f" {float(r['dice_ci_high']):.3f}, patients resampled)"
            )
    for r in rows:
        chosen = r.get("label_choice") == "True" and r["model"] == "segmenter"
        if chosen and r["split"] == "test":
            lines.append(
                "label-only choice (deletion drop on val; not yet the headline, see"
                f" docs/criterion.md): {r['recipe']} segmenter, test Dice {_dice(r):.3f}"
            )
    supervised = best_row(rows, "test", "supervised", ALL_MASKS)
    if supervised:
        lines.append(f"supervised (all masks): test Dice {_dice(supervised):.3f}")
    return lines + _where(Path(run))


def _where(run: Path) -> list[str]:
    lines = []
    if (run / "model").is_dir():
        line = f"model package: {run}/model (xaiseg predict --model {run}/model SCANS --out OUT)"
        if read_plan(run).get("predict"):
            line += f"; predictions: {run}/predict/predictions.tsv"
        lines.append(line)
    lines.append(
        f"tables: {run}/summary.csv; report: snakemake --report {run}/report.html"
        " (make run writes it)"
    )
    stages = stage_lines(run / "benchmarks")
    if stages:
        lines += [f"stages (jobs, wall time; {run}/benchmarks/):", *stages]
    rates = saliency_rates(run / "saliency")
    if rates:
        lines += ["saliency computation (start-up excluded):", *rates]
    return lines
