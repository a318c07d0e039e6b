"""The experiment table of a finished run: every recipe's val and test numbers, the
ratio to the supervised U-Net, and each job's run time. Run by hand after a run:

    python benchmarks/experiment_table.py results/lgg40

Val numbers are shown because recipes are chosen on them; test numbers are read once.
The ratio's 95% interval resamples test patients (paired: the same patients for the
weak row and the supervised U-Net), since slices of one patient are not independent.
``ungated`` rows score the segmenters' own masks (probability >= 0.5) without the
classifier gate, from the stored probabilities, so the gate's share is visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.tables import FEW_MASK_MODELS
from xaiseg.metrics import segmentation_scores


def job_seconds(run: Path) -> dict[str, float]:
    """Wall seconds per job, from Snakemake's benchmark files."""
    return {
        tsv.stem: float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
        for tsv in sorted((run / "benchmarks").glob("*.tsv"))
    }


def ungated_scores(run: Path, name: str) -> pd.DataFrame:
    """Per-image Dice and positivity of a segmenter's own masks, before any gate."""
    store = ShardStore(run / "data")
    predictions = ShardStore(run / "segmenter" / name / "predictions")
    rows = []
    for ids, (data, pred) in store.iter_joined(predictions):
        own = pred["probability"].float() >= 0.5
        scores = segmentation_scores(own, data["mask"])
        truth = data["mask"].flatten(1).any(1)
        for i, sample in enumerate(ids):
            rows.append((sample, bool(truth[i]), bool(own[i].any()), float(scores["dice"][i])))
    frame = pd.DataFrame(rows, columns=["sample_id", "truth_positive", "pred_positive", "dice"])
    split = pd.DataFrame(store.samples)[["sample_id", "split"]]
    return frame.merge(split, on="sample_id")


def ratio_interval(
    per_image: pd.DataFrame, recipe: str, model: str, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of (mean test Dice of the row) / (of the supervised U-Net)
    on tumour slices, resampling whole patients with replacement."""
    test = per_image[(per_image["split"] == "test") & per_image["truth_positive"]]
    weak = test[(test["recipe"] == recipe) & (test["model"] == model)]
    strong = test[test["model"] == "supervised"]
    paired = weak.merge(strong, on=["sample_id", "group"], suffixes=("", "_sup"))
    if paired.empty:
        return float("nan"), float("nan")
    groups = [g[["dice", "dice_sup"]].to_numpy() for _, g in paired.groupby("group")]
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_resamples):
        rows = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        ratios.append(rows[:, 0].mean() / max(rows[:, 1].mean(), 1e-9))
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def table(run: Path) -> pd.DataFrame:
    summary = pd.read_csv(run / "summary.csv", keep_default_na=False)
    # Few-masks runs (one row per seed) have their own table: eval/dice_vs_fraction.csv.
    summary = summary[~summary["model"].isin(FEW_MASK_MODELS)]
    rows = []
    for (recipe, model, setting), group in summary.groupby(
        ["recipe", "model", "setting"], sort=False
    ):
        by_split = group.set_index("split")
        row = {"recipe": recipe, "model": model, "setting": setting}
        for split in ("val", "test"):
            if split in by_split.index:
                row[f"{split}_dice"] = float(by_split.loc[split, "dice"])
                row[f"{split}_fpr"] = float(by_split.loc[split, "false_positive_rate"])
        row["test_dice_all"] = float(by_split.loc["test", "dice_all"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    supervised = frame.loc[frame["model"] == "supervised", "test_dice"]
    if len(supervised):
        frame["ratio_to_supervised"] = frame["test_dice"] / float(supervised.iloc[0])
        per_image = pd.read_csv(run / "eval" / "per_image.csv", dtype={"sample_id": str})
        intervals = [
            ratio_interval(per_image, r, m) if m != "supervised" else (1.0, 1.0)
            for r, m in zip(frame["recipe"], frame["model"], strict=True)
        ]
        frame["ratio_ci_low"] = [low for low, _ in intervals]
        frame["ratio_ci_high"] = [high for _, high in intervals]
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path, help="a run folder, e.g. results/lgg40")
    run = parser.parse_args().run
    pd.set_option("display.width", 200)
    print(table(run).round(3).to_string(index=False))
    few = run / "eval" / "dice_vs_fraction.csv"
    if few.is_file():
        print("\nfew masks (DoLL), mean and standard deviation over seeds:")
        print(pd.read_csv(few).round(3).to_string(index=False))
    print("\nungated segmenters (their own masks, no classifier gate):")
    for folder in sorted((run / "segmenter").iterdir()):
        scores = ungated_scores(run, folder.name)
        for split in ("val", "test"):
            part = scores[scores["split"] == split]
            dice = part.loc[part["truth_positive"], "dice"].mean()
            fpr = part.loc[~part["truth_positive"], "pred_positive"].mean()
            print(f"  {folder.name:32s} {split:4s} dice {dice:.3f} fpr {fpr:.3f}")
    print("\njob wall seconds:")
    seconds = job_seconds(run)
    for name, value in seconds.items():
        print(f"  {name:40s} {value:8.1f}")
    print(f"  {'sum':40s} {sum(seconds.values()):8.1f}")


if __name__ == "__main__":
    main()
