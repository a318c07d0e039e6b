"""``report.md``: what went in, what the classifier did, and the test-split table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.data.splits import SPLITS
from xaiseg.evaluate.criterion import AGREEMENT, CRITERION
from xaiseg.evaluate.tables import dice_against_count, to_markdown


def render_report(
    data_dir: Path, summary: pd.DataFrame, classifier_metrics: Path | None, choice_tie: float
) -> str:
    index = ShardStore(data_dir).index
    counts = index.get("counts", {})
    splits = pd.Series([s["split"] for s in index["samples"]]).value_counts()
    lines = [
        "# xaiseg report",
        "",
        "## Data",
        "",
        f"- images in the sheet: {counts.get('in', '?')}, kept: {counts.get('kept', '?')}, "
        f"quarantined: {counts.get('quarantined', '?')} (see `quarantine.tsv`)",
        "- split sizes: " + ", ".join(f"{k} {splits.get(k, 0)}" for k in SPLITS),
        f"- classes: {', '.join(index['classes'])}; image size {index['image_size']}, "
        f"{index['channels']} channel(s)",
        "",
    ]
    if classifier_metrics and classifier_metrics.is_file():
        metrics = json.loads(classifier_metrics.read_text())
        if metrics.get("warning"):
            lines[1:1] = ["", f"> **Warning:** {metrics['warning']}."]
        lines += [
            "## Classifier (test split)",
            "",
            "| threshold | auc | accuracy | sensitivity | specificity |",
            "|---|---|---|---|---|",
        ]
        for name, key in (
            ("0.5", "test"),
            (f"{metrics.get('val_threshold', 0.5):.3f} (val)", "test_at_val_threshold"),
        ):
            if key in metrics:
                values = [
                    metrics[key][k] for k in ("auc", "accuracy", "sensitivity", "specificity")
                ]
                lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
        lines.append("")
    lines += criterion_lines(summary, choice_tie)
    test = summary[summary["split"] == "test"].drop(
        columns=["split", "warning", CRITERION, AGREEMENT, "label_choice"], errors="ignore"
    )
    lines += [
        "## Segmentation (test split)",
        "",
        "Dice, IoU and HD95 average over images with a lesion; `dice_all` counts every image;"
        " `dice_volume` is each patient's images taken together, averaged over patients.",
        "",
        to_markdown(test),
        "![overlays](figures/overlays.png)",
        "",
    ]
    lines += count_lines(summary)
    return "\n".join(lines)


def count_lines(summary: pd.DataFrame) -> list[str]:
    """The runs on k masks of their own, each count averaged over its draws (test)."""
    table = dice_against_count(summary)
    table = table[table["split"] == "test"]
    if table.empty:
        return []
    rows = [
        f"| {row.masks:.0f} | {row.model} | {row.runs} | {row.dice_mean:.3f} | "
        f"{'' if pd.isna(row.dice_sd) else f'{row.dice_sd:.3f}'} | "
        f"{'' if pd.isna(row.of_supervised) else f'{row.of_supervised:.2f}x'} |"
        for row in table.sort_values(["masks", "model"]).itertuples()
    ]
    return [
        "## Few masks of your own (test split)",
        "",
        "Fine-tuned from the weak U-Net that `finetune.pretrained` names (`finetune`) or "
        "trained from scratch on k annotated train scans, each count over its draws (which "
        "scans are drawn moves a run more than any setting): mean and standard deviation "
        "of the Dice, and the mean against the supervised U-Net's (`eval/dice_vs_count.csv`).",
        "",
        "| masks | model | draws | dice | sd | of supervised |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def criterion_lines(summary: pd.DataFrame, choice_tie: float) -> list[str]:
    """Each recipe's label-only criterion beside its val Dice, and the recipe it chooses."""
    if CRITERION not in summary or summary[CRITERION].isna().all():
        return []
    val = summary[(summary["split"] == "val") & summary[CRITERION].notna()]
    table = val.pivot_table("dice", index="recipe", columns="model").reset_index()
    criteria = [c for c in (CRITERION, AGREEMENT) if c in val]
    table = val.drop_duplicates("recipe")[["recipe", *criteria]].merge(table, on="recipe")
    table = table.sort_values(CRITERION, ascending=False, kind="stable").rename(
        columns={"pseudo_mask": "val dice, pseudo-mask", "segmenter": "val dice, segmenter"}
    )
    chosen = val.loc[val["label_choice"], "recipe"]
    tie = (
        f" Margins within {choice_tie:g} of the best are told apart by {AGREEMENT} (the "
        "mean pooled Dice of a U-Net's val masks with every other candidate's)."
        if choice_tie > 0
        else ""
    )
    return [
        "## Choosing without masks (val split)",
        "",
        "Each recipe's U-Net on the val images: the mean probability of its most "
        "confident pixels on images with the finding less that on images without "
        f"({CRITERION}; labels only).{tie} Chosen, and the headline: "
        f"**{chosen.iloc[0] if len(chosen) else 'none'}**. Val Dice, which needs the val "
        "masks, beside it (how the criterion tracks it on each dataset: "
        "docs/criterion.md):",
        "",
        to_markdown(table),
        "",
    ]
