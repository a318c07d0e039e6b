import pytest

from xaiseg.errors import InputError
from xaiseg.io.sheet import read_sheet

CLASSES = ("normal", "lesion")


def test_valid_sheet_resolves_paths_and_defaults_group(png_dataset):
    sheet_path, folder = png_dataset
    sheet = read_sheet(sheet_path, CLASSES)
    assert len(sheet) == 6
    assert sheet.loc[0, "image"] == str((folder / "img0.png").resolve())
    assert set(sheet["group"]) == {"p0", "p1", "p2"}


def _rewrite(sheet_path, old, new):
    sheet_path.write_text(sheet_path.read_text().replace(old, new, 1))


def test_missing_image_names_row_and_file(png_dataset):
    sheet_path, _ = png_dataset
    _rewrite(sheet_path, "img3.png", "gone.png")
    with pytest.raises(InputError, match=r"row 5 \(s3\): gone\.png: image file not found"):
        read_sheet(sheet_path, CLASSES)


def test_label_outside_classes_names_row(png_dataset):
    sheet_path, _ = png_dataset
    _rewrite(sheet_path, "\tlesion\t", "\ttumour\t")
    with pytest.raises(InputError, match=r"row 3 \(s1\): label 'tumour' is not one of"):
        read_sheet(sheet_path, CLASSES)


def test_duplicate_sample_id(png_dataset):
    sheet_path, _ = png_dataset
    _rewrite(sheet_path, "s5\t", "s4\t")
    with pytest.raises(InputError, match="duplicate sample_id 's4'"):
        read_sheet(sheet_path, CLASSES)


def test_all_problems_reported_at_once(png_dataset):
    sheet_path, _ = png_dataset
    _rewrite(sheet_path, "\tlesion\t", "\ttumour\t")
    _rewrite(sheet_path, "s2\t", "bad id\t")
    with pytest.raises(InputError) as info:
        read_sheet(sheet_path, CLASSES)
    assert "row 4 (bad id): sample_id" in str(info.value)
    assert "row 3 (s1): label 'tumour'" in str(info.value)


def test_invalid_split_value(png_dataset):
    sheet_path, _ = png_dataset
    text = sheet_path.read_text().splitlines()
    text[0] += "\tsplit"
    text[1:] = [line + ("\tholdout" if i == 0 else "\t") for i, line in enumerate(text[1:])]
    sheet_path.write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"row 2 \(s0\): split: 'holdout' is not one of"):
        read_sheet(sheet_path, CLASSES)


def test_schema_screen_finds_exactly_the_rows_jsonschema_would(tmp_path):
    import jsonschema
    import yaml

    from xaiseg.io.sheet import COLUMNS, SCHEMA_PATH, _suspect_rows

    values = [("s1", "train", ""), ("bad id", "train", ""), ("s3", "later", ""),
              ("s4", "", "2"), ("s5", "val", "x"), ("-s6", "", "")]  # fmt: skip
    rows = [{**dict.fromkeys(COLUMNS, ""), "sample_id": sid, "split": split, "frame": frame,
             "image": "a.png", "label": "lesion"} for sid, split, frame in values]  # fmt: skip
    rows.append({**rows[0], "image": ""})  # minLength
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    failing = [n for n, row in enumerate(rows, start=2) if list(validator.iter_errors(row))]
    assert _suspect_rows(rows, schema) == failing == [3, 4, 6, 7, 8]


def test_a_folder_symlink_out_of_the_sheet_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(b"png")
    (outside / "y.png").write_bytes(b"png")
    data = tmp_path / "data"
    data.mkdir()
    (data / "elsewhere").symlink_to(outside, target_is_directory=True)
    (data / "sheet.tsv").write_text(
        "sample_id\timage\tlabel\ns0\telsewhere/x.png\tlesion\ns1\telsewhere/y.png\tnormal\n"
    )
    with pytest.raises(InputError, match=r"row 2 \(s0\): elsewhere/x\.png: image path leaves"):
        read_sheet(data / "sheet.tsv", ["normal", "lesion"])
    sheet = read_sheet(
        data / "sheet.tsv", ["normal", "lesion"], require_files=False, roots=[outside]
    )
    assert sheet.loc[0, "image"] == str(outside / "x.png")


def _run_settings(**data):
    from xaiseg.settings import workflow_settings

    maps = {"saliency": {"maps": {"gradcam": {}}}}
    recipes = {"masks": {"recipes": [{"name": "a", "maps": ["gradcam"]}]}}
    return workflow_settings({**maps, **recipes, **data})


def test_what_stops_a_run_before_its_first_job(png_dataset, tmp_path):
    from xaiseg.io.sheet import run_input_problem

    sheet, _ = png_dataset
    assert run_input_problem(_run_settings(data={"source": "sheet", "sheet": str(sheet)})) is None
    gone = _run_settings(data={"source": "sheet", "sheet": str(tmp_path / "gone.tsv")})
    assert "config data.sheet: sample sheet" in run_input_problem(gone)
    no_root = _run_settings(data={"source": "layout", "layout": "busi", "root": "nowhere"})
    assert run_input_problem(no_root) == "config data.root: dataset folder 'nowhere' does not exist"
    weights = _run_settings(segmenter={"init_weights": "w.safetensors"})
    assert (
        run_input_problem(weights)
        == "config segmenter.init_weights: file 'w.safetensors' not found"
    )
    (tmp_path / "img2.png").unlink()  # a row's image gone: the sheet's own problem, named
    problem = run_input_problem(_run_settings(data={"source": "sheet", "sheet": str(sheet)}))
    assert "row 4 (s2): img2.png: image file not found" in problem  # row 1 is the header
    skip = {"on_bad_input": "skip"}  # quarantined by preprocessing instead
    assert (
        run_input_problem(
            _run_settings(data={"source": "sheet", "sheet": str(sheet)}, preprocess=skip)
        )
        is None
    )
