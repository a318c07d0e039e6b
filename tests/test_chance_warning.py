"""A classifier trained on shuffled labels must say so: in its log, in the summary and
in the report, instead of producing masks as if nothing were wrong."""

import json

import numpy as np
import pandas as pd
from PIL import Image

from xaiseg.cli import main


def _shuffled_sheet(folder):
    """24 images in 8 patients; half hold a bright square, and the labels are shuffled
    so that they say nothing about the image."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(["normal", "lesion"] * 12)
    rows = ["sample_id\timage\tlabel\tmask\tgroup"]
    for i in range(24):
        image = rng.integers(0, 60, (16, 16)).astype(np.uint8)
        mask = np.zeros((16, 16), np.uint8)
        if i % 2:
            image[4:9, 4:9] = 220
            mask[4:9, 4:9] = 255
        Image.fromarray(image).save(folder / f"img{i}.png")
        Image.fromarray(mask).save(folder / f"img{i}_mask.png")
        rows.append(f"s{i}\timg{i}.png\t{labels[i]}\timg{i}_mask.png\tp{i // 3}")
    sheet = folder / "sheet.tsv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet


def test_shuffled_labels_warn_in_log_summary_and_report(tmp_path, capsys):
    sheet = _shuffled_sheet(tmp_path)
    run = tmp_path / "run"
    args = ["preprocess", "--sheet", str(sheet), "--out", str(run), "--image-size", "16"]
    args += ["--classes", "normal", "lesion", "--val-fraction", "0.3", "--test-fraction", "0.2"]
    assert main(args) == 0
    settings = {"network": "resnet10", "epochs": 2, "batch_size": 4}
    args = ["train-classifier", "--data", str(run / "data"), "--out", str(run / "clf")]
    assert main([*args, "--settings", json.dumps(settings)]) == 0
    assert "WARNING: the classifier is not clearly better than chance" in capsys.readouterr().out
    metrics = json.loads((run / "clf" / "metrics.json").read_text())
    low, high = metrics["val_auc_ci"]
    assert low <= 0.5 <= high and "warning" in metrics

    # The data's own masks stand in for a recipe's pseudo-masks.
    args = ["evaluate", "--data", str(run / "data"), "--out", str(run / "eval")]
    args += ["--evaluate", f"truth:pseudo_mask:{run / 'data'}"]
    assert main([*args, "--classifier-metrics", str(run / "clf" / "metrics.json")]) == 0
    assert "WARNING" in capsys.readouterr().out
    summary = pd.read_csv(run / "eval" / "summary.csv", keep_default_na=False)
    assert summary["warning"].str.contains("not clearly better than chance").all()
    assert (
        "**Warning:** the classifier is not clearly better than chance"
        in (run / "eval" / "report.md").read_text()
    )
