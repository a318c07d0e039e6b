"""``report.md``: what went in, what the classifier did, and the test-split table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xaiseg.data.shards import ShardStore
from xaiseg.evaluate.tables import to_markdown


def render_report(data_dir: Path, summary: pd.DataFrame, classifier_metrics: Path | None) -> str:
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
        "- split sizes: " + ", ".join(f"{k} {splits.get(k, 0)}" for k in ("train", "val", "test")),
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
    test = summary[summary["split"] == "test"].drop(columns=["split", "warning"], errors="ignore")
    lines += [
        "## Segmentation (test split)",
        "",
        "Dice, IoU and HD95 average over images with a lesion; `dice_all` counts every image.",
        "",
        to_markdown(test),
        "![overlays](figures/overlays.png)",
        "",
    ]
    return "\n".join(lines)
