"""The run's headline, read back from its ``summary.csv``: the weak segmenter chosen on
val from image labels (test never chooses; ``xaiseg.evaluate.criterion``), its test
Dice with the patient interval, the supervised bound, and where everything is.
Standard library only: the workflow prints it at the end of every run, and ``xaiseg
export`` picks the headline's segmenter by the same rule."""

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
    """The recipe of the headline weak segmenter: the one the label-only criterion
    chose on val (``label_choice``), else, where it could not choose (no val image
    without the finding, or no criterion column), the best val Dice among the no-masks
    segmenter rows. None when the table has no such row."""
    chosen = label_choice(rows)
    if chosen:
        return chosen
    best = best_row(rows, "val", "segmenter", NO_MASKS)
    return best["recipe"] if best else None


def label_choice(rows: list[dict[str, str]]) -> str | None:
    """The recipe the label-only criterion chose, if it chose one."""
    for r in rows:
        if r.get("label_choice") == "True" and r["model"] == "segmenter":
            return r["recipe"]
    return None


def headline_lines(run: str | Path) -> list[str]:
    """What a person wants at the end of a run (nothing before the summary exists)."""
    rows = summary_rows(run)
    if not rows:
        return []
    recipe = headline_recipe(rows)
    how = "chosen from labels" if label_choice(rows) else "best val Dice"
    lines = _test_line(rows, recipe, f"headline (no masks, {how})")
    by_val = (best_row(rows, "val", "segmenter", NO_MASKS) or {}).get("recipe")
    if by_val != recipe:
        lines += _test_line(rows, by_val, "best val Dice (reads the val masks)")
    supervised = best_row(rows, "test", "supervised", ALL_MASKS)
    if supervised:
        lines.append(f"supervised (all masks): test Dice {_dice(supervised):.3f}")
    return lines + _where(Path(run))


def _test_line(rows: list[dict[str, str]], recipe: str | None, what: str) -> list[str]:
    """The test row of ``recipe``'s no-masks segmenter, as one line (none without)."""
    for r in rows:
        if (r["recipe"], r["model"], r["setting"], r["split"]) == (
            recipe, "segmenter", NO_MASKS, "test",
        ):  # fmt: skip
            return [
                f"{what}: {recipe} segmenter, test Dice {_dice(r):.3f}"
                f" (95% CI {float(r['dice_ci_low']):.3f} to"
                f" {float(r['dice_ci_high']):.3f}, patients resampled)"
            ]
    return []


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
