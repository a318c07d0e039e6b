"""Bad input through the real command line: clear errors, every bad file named."""

import json

import numpy as np
import pandas as pd
from PIL import Image

from xaiseg.cli import main


def _run(sheet, out, *extra):
    return main(
        [
            "preprocess",
            "--sheet",
            str(sheet),
            "--out",
            str(out),
            "--classes",
            "normal",
            "lesion",
            "--image-size",
            "8",
            "--val-fraction",
            "0.3",
            "--test-fraction",
            "0.3",
            *extra,
        ]
    )


def test_preprocess_writes_shards_index_and_provenance(png_dataset, tmp_path):
    sheet, _ = png_dataset
    assert _run(sheet, tmp_path / "run") == 0
    index = json.loads((tmp_path / "run" / "data" / "index.json").read_text())
    assert index["counts"] == {"in": 6, "kept": 6, "quarantined": 0}
    assert index["shards"] == ["shard-00000.safetensors"]
    groups = pd.DataFrame(index["samples"]).groupby("group")["split"].nunique()
    assert (groups == 1).all()
    assert (tmp_path / "run" / "data" / "provenance.json").is_file()


def test_every_bad_file_named_and_nothing_written(png_dataset, tmp_path, capsys):
    sheet, folder = png_dataset
    (folder / "img1.png").write_bytes((folder / "img1.png").read_bytes()[:40])  # truncated
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(folder / "img3_mask.png")  # wrong size
    assert _run(sheet, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "2 problem(s) in the sample sheet" in err
    assert "row 3 (s1): img1.png: image cannot be decoded" in err
    assert "row 5 (s3): img3_mask.png: mask size (9, 9) differs from image size (16, 16)" in err
    assert not (tmp_path / "run" / "data" / "index.json").exists()


def _fix_splits(sheet):
    """p0 and p2 train, p1 val: a quarantined file cannot empty a split of a class."""
    lines = sheet.read_text().splitlines()
    split = {"p0": "train", "p1": "val", "p2": "train"}
    rows = [f"{line}\t{split[line.split(chr(9))[4]]}" for line in lines[1:]]
    sheet.write_text("\n".join([lines[0] + "\tsplit", *rows]) + "\n")


def test_skip_policy_quarantines(png_dataset, tmp_path):
    sheet, folder = png_dataset
    _fix_splits(sheet)
    (folder / "img1.png").write_bytes(b"not a png")
    assert _run(sheet, tmp_path / "run", "--on-bad-input", "skip") == 0
    quarantine = pd.read_csv(tmp_path / "run" / "quarantine.tsv", sep="\t")
    assert list(quarantine["sample_id"]) == ["s1"]
    index = json.loads((tmp_path / "run" / "data" / "index.json").read_text())
    assert index["counts"] == {"in": 6, "kept": 5, "quarantined": 1}


def test_mask_resize_option(png_dataset, tmp_path):
    sheet, folder = png_dataset
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(folder / "img3_mask.png")
    assert _run(sheet, tmp_path / "run", "--mask-size-mismatch", "resize") == 0


def test_skip_policy_quarantines_missing_files(png_dataset, tmp_path):
    sheet, folder = png_dataset
    _fix_splits(sheet)
    (folder / "img4.png").unlink()
    (folder / "img5_mask.png").unlink()
    assert _run(sheet, tmp_path / "run", "--on-bad-input", "skip") == 0
    quarantine = pd.read_csv(tmp_path / "run" / "quarantine.tsv", sep="\t")
    assert list(quarantine["sample_id"]) == ["s4", "s5"]
    assert list(quarantine["row"]) == [6, 7]
    assert quarantine["reason"].str.contains("file not found").all()


def test_missing_mask_file_named(png_dataset, tmp_path, capsys):
    sheet, folder = png_dataset
    (folder / "img5_mask.png").unlink()
    assert _run(sheet, tmp_path / "run") == 2
    assert "row 7 (s5): img5_mask.png: mask file not found" in capsys.readouterr().err


def test_scale_percentiles_hand_computed():
    from xaiseg.data.preprocess import scale_percentiles

    image = np.arange(101, dtype=np.float32).reshape(1, 1, 101)
    out = scale_percentiles(image, 10, 90)  # 10th percentile = 10, 90th = 90
    assert out[0, 0, 10] == 0 and out[0, 0, 90] == 1 and out[0, 0, 50] == 0.5
    assert out.min() == 0 and out.max() == 1
    flat = np.full((2, 3, 3), 7.0)
    assert (scale_percentiles(flat, 1, 99) == 0).all()  # constant channel: no division by zero


def _brightness_sheet(folder):
    """Two patients whose rows interleave; in each, one slice half as bright as the other."""
    rows = ["sample_id\timage\tlabel\tgroup\tsplit"]
    for patient, peak in (("p", 100), ("q", 250)):
        for k, scale in enumerate((0.5, 1.0)):
            image = np.tile(np.linspace(0, peak * scale, 16), (16, 1)).round().astype(np.uint8)
            Image.fromarray(image).save(folder / f"{patient}{k}.png")
    for k in range(2):
        for patient in ("p", "q"):
            label = "lesion" if k else "normal"
            split = "train" if patient == "p" else "val"
            rows.append(f"{patient}{k}\t{patient}{k}.png\t{label}\t{patient}\t{split}")
    sheet = folder / "sheet.tsv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet


def _peaks(out):
    from xaiseg.data.shards import ShardStore

    store = ShardStore(out / "data")
    images = store.load(["image"])["image"]
    return {s: round(float(images[i].max()), 3) for i, s in enumerate(store.sample_ids)}


def test_percentiles_over_a_group_keep_the_brightness_between_its_slices(tmp_path):
    sheet = _brightness_sheet(tmp_path)
    shared = ["--image-size", "16", "--val-fraction", "0", "--test-fraction", "0"]
    settings = {"percentiles": [0, 100], "percentiles_over": "group"}
    args = ["preprocess", "--sheet", str(sheet), "--classes", "normal", "lesion", *shared]
    assert main([*args, "--out", str(tmp_path / "g"), "--settings", json.dumps(settings)]) == 0
    # One scale per patient: its dimmer slice peaks at half, whatever the other patient.
    assert _peaks(tmp_path / "g") == {"p0": 0.5, "q0": 0.5, "p1": 1.0, "q1": 1.0}
    settings["percentiles_over"] = "image"
    assert main([*args, "--out", str(tmp_path / "i"), "--settings", json.dumps(settings)]) == 0
    assert set(_peaks(tmp_path / "i").values()) == {1.0}
