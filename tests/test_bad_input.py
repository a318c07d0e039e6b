"""Bad input fails in seconds with every problem named: row (as a spreadsheet shows
it), sample_id, file and reason; paths stay confined and out of artifacts."""

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xaiseg.cli import main
from xaiseg.errors import InputError
from xaiseg.io import load_image
from xaiseg.io.sheet import read_sheet
from xaiseg.provenance import write_text

CLASSES = ("normal", "lesion")


def _preprocess(sheet, out, *extra):
    args = ["preprocess", "--sheet", str(sheet), "--out", str(out), "--classes", *CLASSES]
    args += ["--image-size", "8", "--val-fraction", "0.3", "--test-fraction", "0.3", *extra]
    return main(args)


def test_decompression_bomb_is_named(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (14000, 14000)).save(path)  # 196 Mpx; tiny on disk
    with pytest.raises(InputError, match=r"huge\.png: image is too large to decode safely"):
        load_image(path)


def test_zero_byte_sheet_is_named(tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_bytes(b"")
    with pytest.raises(InputError, match="sample sheet is empty"):
        read_sheet(sheet, CLASSES)


def test_single_class_sheet_fails(png_dataset):
    sheet, _ = png_dataset
    sheet.write_text(sheet.read_text().replace("\tlesion\t", "\tnormal\t"))
    with pytest.raises(InputError, match=r"only class\(es\) \['normal'\] occur"):
        read_sheet(sheet, CLASSES)


def test_tiny_image_is_refused(png_dataset, tmp_path, capsys):
    sheet, folder = png_dataset
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(folder / "img0.png")
    assert _preprocess(sheet, tmp_path / "run") == 2
    assert "row 2 (s0): img0.png: image is 1x1 pixels; need 8 per side" in capsys.readouterr().err


def test_split_without_a_class_is_flagged(png_dataset, tmp_path, capsys):
    sheet, _ = png_dataset
    lines = sheet.read_text().splitlines()
    splits = ["train", "train", "val", "val", "train", "train"]
    lines = [lines[0] + "\tsplit"] + [
        f"{row}\t{s}" for row, s in zip(lines[1:], splits, strict=True)
    ]
    lines[3] = lines[3].replace("\tnormal\t", "\tlesion\t")  # val: lesion only
    sheet.write_text("\n".join(lines) + "\n")
    assert _preprocess(sheet, tmp_path / "run") == 2
    assert "the val split holds no 'normal' image" in capsys.readouterr().err


def test_every_kind_of_problem_in_one_run(png_dataset, tmp_path, capsys):
    sheet, folder = png_dataset
    sheet.write_text(sheet.read_text().replace("s1\timg1.png\tlesion", "s1\timg1.png\ttumour"))
    (folder / "img2.png").unlink()
    (folder / "img3.png").write_bytes((folder / "img3.png").read_bytes()[:40])
    assert _preprocess(sheet, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    assert "row 3 (s1): label 'tumour' is not one of the classes" in err
    assert "row 4 (s2): img2.png: image file not found" in err
    assert "row 5 (s3): img3.png: image cannot be decoded" in err
    problems = err.split("problem(s) in the sample sheet:", 1)[1]
    assert str(folder) not in problems  # paths as the sheet wrote them, nothing more


def test_paths_outside_the_sheet_folder_are_refused(png_dataset, tmp_path):
    sheet, folder = png_dataset
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(outside / "x.png")
    (folder / "link.png").symlink_to(outside / "x.png")  # a symlink does not escape either
    text = sheet.read_text()
    text = text.replace("img0.png\tnormal", "../../../../../../etc/passwd\tnormal")
    text = text.replace("img2.png\tnormal", "link.png\tnormal")
    sheet.write_text(text)
    with pytest.raises(InputError) as caught:
        read_sheet(sheet, CLASSES)
    message = str(caught.value)
    assert (
        "row 2 (s0): ../../../../../../etc/passwd: image path leaves the sheet's folder" in message
    )
    assert "row 4 (s2): link.png: image path leaves the sheet's folder" in message
    assert len(read_sheet(sheet, CLASSES, roots=["/etc", outside])) == 6


def test_artifacts_keep_paths_relative(png_dataset, tmp_path):
    sheet, folder = png_dataset
    assert _preprocess(sheet, tmp_path / "run") == 0
    kept = pd.read_csv(tmp_path / "run" / "sheet.tsv", sep="\t")
    assert kept.loc[0, "image"] == "img0.png"
    for name in ("sheet.tsv", "data/index.json", "data/provenance.json", "quarantine.tsv"):
        assert str(folder) not in (tmp_path / "run" / name).read_text(), name


def test_privacy_strict_keeps_only_ids_and_hashes(png_dataset, tmp_path):
    sheet, folder = png_dataset
    (folder / "img1.png").write_bytes(b"broken")
    assert (
        _preprocess(sheet, tmp_path / "run", "--on-bad-input", "skip", "--privacy", "strict") == 0
    )
    run = tmp_path / "run"
    texts = {n: (run / n).read_text() for n in ("sheet.tsv", "quarantine.tsv", "data/index.json")}
    texts["provenance"] = (run / "data" / "provenance.json").read_text()
    for name, text in texts.items():
        assert "img" not in text and "p0" not in text, name  # no file names, no groups
    quarantine = pd.read_csv(run / "quarantine.tsv", sep="\t")
    assert quarantine.loc[0, "sample_id"] == "s1" and quarantine.loc[0, "file"].startswith(
        "sha256:"
    )
    assert "source" not in json.loads(texts["data/index.json"])["samples"][0]


def test_artifacts_respect_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
