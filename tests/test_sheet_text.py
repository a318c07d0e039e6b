"""The sheet is literal TSV: every data line is a row, whatever quotes it holds, and
what preprocessing writes back keeps no path the sheet's folder does not explain."""

import json
import subprocess

import pytest

from xaiseg.cli import main
from xaiseg.errors import InputError
from xaiseg.io.sheet import load_rows, read_sheet

CLASSES = ("normal", "lesion")


def _with_notes(sheet, note_of_row):
    lines = sheet.read_text().splitlines()
    out = [lines[0] + "\tnotes"]
    for number, line in enumerate(lines[1:], start=2):
        out.append(f"{line}\t{note_of_row.get(number, '')}")
    sheet.write_text("\n".join(out) + "\n")


def test_a_stray_quote_in_a_note_keeps_every_row(png_dataset):
    sheet, _ = png_dataset
    _with_notes(sheet, {3: '"re-check, see report', 5: 'say "maybe"'})
    table = read_sheet(sheet, CLASSES)
    assert list(table["sample_id"]) == [f"s{i}" for i in range(6)]
    assert load_rows(sheet)[1]["notes"] == '"re-check, see report'


def test_a_leading_quote_in_a_group_is_part_of_the_group(png_dataset):
    sheet, _ = png_dataset
    sheet.write_text(sheet.read_text().replace("\tp0\n", '\t"p0\n', 1))
    table = read_sheet(sheet, CLASSES)
    assert len(table) == 6
    assert list(table["group"])[:2] == ['"p0', "p0"]


def test_preprocessing_keeps_the_rows_a_quote_would_have_swallowed(png_dataset, tmp_path):
    sheet, _ = png_dataset
    _with_notes(sheet, {3: '"re-check, see report'})
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", *CLASSES, "--image-size", "8"]
    assert main([*args, "--val-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    index = json.loads((tmp_path / "run" / "data" / "index.json").read_text())
    assert index["counts"] == {"in": 6, "kept": 6, "quarantined": 0}


def test_a_row_with_more_cells_than_the_header_is_named(png_dataset):
    sheet, _ = png_dataset
    lines = sheet.read_text().splitlines()
    lines[4] += "\textra"
    sheet.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="line 5 has 6 tab-separated cells, the header 5"):
        read_sheet(sheet, CLASSES)


def test_a_latin1_sheet_is_named_with_its_line(png_dataset):
    sheet, _ = png_dataset
    text = sheet.read_text().replace("s4\t", "s4-Müller\t")
    sheet.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError, match=r"sheet\.tsv: sample sheet is not UTF-8 .*line 6"):
        read_sheet(sheet, CLASSES)


def test_absolute_sheet_paths_are_kept_relative_to_the_sheet(png_dataset, tmp_path):
    sheet, folder = png_dataset
    text = sheet.read_text().replace("\timg", f"\t{folder}/img")
    sheet.write_text(text)
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", *CLASSES, "--image-size", "8"]
    assert main([*args, "--val-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    kept = (tmp_path / "run" / "sheet.tsv").read_text()
    assert str(folder) not in kept
    assert "\timg0.png\tnormal\timg0_mask.png\t" in kept


def _strict_groups(tmp_path, named_folder):
    """The demo sheet moved into a folder named after a patient, preprocessed in shard
    groups under ``privacy: strict``."""
    assert main(["demo-data", "--out", str(named_folder), "--n-images", "24", "--size", "16"]) == 0
    flags = ["--classes", *CLASSES, "--image-size", "16", "--shard-size", "4"]
    flags += ["--privacy", "strict"]
    sheet = ["--sheet", str(named_folder / "sheet.tsv")]
    assert main(["preprocess-plan", *sheet, "--out", str(tmp_path / "run/plan"), *flags]) == 0
    parts = [str(tmp_path / f"run/groups/g{g}") for g in range(3)]
    for g, part in enumerate(parts):
        args = ["preprocess", "--plan", str(tmp_path / "run/plan"), *sheet, "--group", str(g)]
        assert main([*args, "2", "--out", part, *flags]) == 0
    args = ["preprocess", "--plan", str(tmp_path / "run/plan"), *sheet, "--parts", *parts]
    assert main([*args, "--out", str(tmp_path / "run"), *flags]) == 0


def test_strict_privacy_under_shard_groups_writes_no_name(tmp_path):
    folder = tmp_path / "DOE_JOHN_MRN12345"
    _strict_groups(tmp_path, folder)
    found = subprocess.run(
        ["grep", "-rl", "-e", "DOE_JOHN", "-e", "P00", str(tmp_path / "run")],  # groups: P000
        capture_output=True,
        text=True,
    ).stdout
    assert found == ""
    assert (tmp_path / "run" / "data" / "index.json").is_file()


def test_a_group_refuses_a_sheet_changed_since_the_plan(tmp_path, capsys):
    folder = tmp_path / "data"
    _strict_groups(tmp_path, folder)
    (folder / "sheet.tsv").write_text((folder / "sheet.tsv").read_text() + "\n")
    sheet = str(folder / "sheet.tsv")
    args = ["preprocess", "--plan", str(tmp_path / "run/plan"), "--sheet", sheet]
    args += ["--group", "0", "2", "--out", str(tmp_path / "again"), "--classes", *CLASSES]
    assert main([*args, "--image-size", "16", "--shard-size", "4"]) == 2
    assert "the sample sheet changed" in capsys.readouterr().err
