"""Dataset layouts on fixtures laid out exactly as the public datasets ship."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from xaiseg.cli import main
from xaiseg.errors import InputError
from xaiseg.io.layouts import build_sheet
from xaiseg.io.layouts.chexpert import OBSERVATIONS
from xaiseg.io.sheet import read_sheet


def _png(path, value=0, size=(8, 8), box=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full(size, value, np.uint8)
    if box:
        array[box] = 255
    Image.fromarray(array).save(path)


def test_lgg_real_subset(lgg_subset, tmp_path):
    out = tmp_path / "sheet.tsv"
    assert main(["sheet", str(lgg_subset), "--layout", "lgg", "--out", str(out)]) == 0
    sheet = read_sheet(out, ["normal", "lesion"])
    slices = list(lgg_subset.glob("*/*.tif"))
    assert len(sheet) == len([s for s in slices if not s.name.endswith("_mask.tif")]) == 296
    assert sheet["group"].nunique() == 10
    # labels match the masks: positive exactly when the mask has foreground
    for row in sheet.sample(20, random_state=0).itertuples():
        assert (row.label == "lesion") == bool(np.asarray(Image.open(row.mask)).any())
    # slices sorted numerically within a patient, not lexically (1, 2, ..., 10)
    first = sheet[sheet["group"] == sheet["group"].iloc[0]]["sample_id"].tolist()
    numbers = [int(s.rsplit("_", 1)[1]) for s in first]
    assert numbers == sorted(numbers) and numbers[:3] == [1, 2, 3]


def test_lgg_split_never_cuts_a_patient(lgg_subset, tmp_path):
    from xaiseg.data.splits import assign_splits

    sheet = build_sheet("lgg", lgg_subset)
    sheet["label_index"] = (sheet["label"] == "lesion").astype(int)
    sheet["split"] = assign_splits(sheet, 0.2, 0.3, seed=0)
    assert (sheet.groupby("group")["split"].nunique() == 1).all()
    assert set(sheet["split"]) == {"train", "val", "test"}


def test_busi_merges_extra_masks(tmp_path):
    root = tmp_path / "Dataset_BUSI_with_GT"
    _png(root / "benign" / "benign (1).png", 50)
    _png(root / "benign" / "benign (1)_mask.png", box=(slice(0, 2), slice(0, 2)))
    _png(root / "benign" / "benign (1)_mask_1.png", box=(slice(5, 7), slice(5, 7)))
    _png(root / "benign" / "benign (10).png", 50)
    _png(root / "benign" / "benign (10)_mask.png", box=(slice(3, 4), slice(3, 4)))
    _png(root / "benign" / "benign (2).png", 50)
    _png(root / "benign" / "benign (2)_mask.png")
    _png(root / "normal" / "normal (1).png", 50)
    _png(root / "normal" / "normal (1)_mask.png")
    out = tmp_path / "out" / "sheet.tsv"
    assert main(["sheet", str(root), "--layout", "busi", "--out", str(out)]) == 0
    sheet = read_sheet(out, ["benign", "normal"])
    assert list(sheet["sample_id"]) == [
        "benign_benign_1",
        "benign_benign_2",
        "benign_benign_10",
        "normal_normal_1",
    ]
    merged = np.asarray(Image.open(sheet.loc[0, "mask"]))
    assert merged[0, 0] and merged[6, 6] and merged.sum() == 8 * 255


def test_kvasir_pairs_images_and_masks(tmp_path):
    root = tmp_path / "Kvasir-SEG"
    for name in ["cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4"]:
        _png(root / "images" / f"{name}.jpg", 80)
        _png(root / "masks" / f"{name}.jpg", box=(slice(2, 5), slice(2, 5)))
    sheet = build_sheet("kvasir", root)
    assert len(sheet) == 2 and set(sheet["label"]) == {"lesion"}
    assert sheet.loc[0, "mask"] == "masks/cju0qkwl35piu0993l0dewei2.jpg"


def test_kvasir_missing_mask_named(tmp_path):
    root = tmp_path / "Kvasir-SEG"
    _png(root / "images" / "a.jpg")
    (root / "masks").mkdir()
    with pytest.raises(InputError, match=r"a\.jpg: Kvasir image has no mask"):
        build_sheet("kvasir", root)


def test_folders_layout_with_masks(tmp_path):
    root = tmp_path / "data"
    _png(root / "healthy" / "x1.png")
    _png(root / "tumour" / "y 1.png", box=(slice(0, 3), slice(0, 3)))
    _png(root / "masks" / "y 1.png", box=(slice(0, 3), slice(0, 3)))
    sheet = build_sheet("folders", root)
    assert list(sheet["label"]) == ["healthy", "tumour"]
    assert list(sheet["mask"]) == ["", "masks/y 1.png"]
    assert sheet.loc[1, "sample_id"] == "tumour_y_1"


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no samples found for layout 'folders'"):
        build_sheet("folders", tmp_path / "empty")


def test_unknown_layout(tmp_path):
    with pytest.raises(InputError, match="unknown layout"):
        build_sheet("imagenet", tmp_path)


def test_sheet_paths_relative_to_sheet_folder(tmp_path):
    root = tmp_path / "data"
    _png(root / "a" / "1.png")
    _png(root / "b" / "2.png")
    out = tmp_path / "elsewhere" / "deep" / "sheet.tsv"
    assert main(["sheet", str(root), "--layout", "folders", "--out", str(out)]) == 0
    raw = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert raw.loc[0, "image"] == "../../data/a/1.png"


def _volume(path, data, affine=None):
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))


def test_nifti_volumes_sliced_with_labels_and_geometry(tmp_path):
    import json

    root = tmp_path / "vols"
    root.mkdir()
    image = np.random.default_rng(0).random((6, 5, 4)).astype(np.float32)
    labels = np.zeros((6, 5, 4), np.float32)
    labels[2, 2, 1] = 0.9999  # float-stored label map
    labels[3, 1, 3] = 1.0001
    flip = np.diag([-2.0, 1.5, 3.0, 1.0])  # LAS with spacing (2, 1.5, 3): reoriented to RAS
    _volume(root / "case1.nii.gz", image, flip)
    _volume(root / "case1_seg.nii.gz", labels, flip)
    out = tmp_path / "out" / "sheet.tsv"
    assert main(["sheet", str(root), "--layout", "nifti", "--out", str(out), "--axis", "2"]) == 0
    sheet = read_sheet(out, ["normal", "lesion"])
    assert list(sheet["label"]) == ["normal", "lesion", "normal", "lesion"]
    assert set(sheet["group"]) == {"case1"}
    geometry = json.loads((tmp_path / "out" / "slices" / "volumes.json").read_text())
    assert geometry["volumes"]["case1"] == {
        "spacing": [2.0, 1.5, 3.0],
        "orientation": "RAS",
        "original_orientation": "LAS",
    }
    from xaiseg.io import load_image

    # x was flipped by the canonical reorientation: slice z=0 row y, column x -> image[5 - x, y, 0]
    slice0 = load_image(sheet.loc[0, "image"])[0]
    np.testing.assert_allclose(slice0, image[::-1, :, 0].T)


def test_nifti_nan_volume_named(tmp_path):
    root = tmp_path / "vols"
    root.mkdir()
    data = np.ones((3, 3, 2), np.float32)
    data[1, 1, 1] = np.nan
    _volume(root / "bad.nii.gz", data)
    _volume(root / "bad_label.nii.gz", np.zeros((3, 3, 2), np.float32))
    with pytest.raises(InputError, match=r"bad\.nii\.gz: NIfTI volume contains 1 NaN/inf voxels"):
        build_sheet("nifti", root, slices_dir=tmp_path / "s")


def test_nnunet_style_nifti_layout(tmp_path):
    root = tmp_path / "Task01"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    _volume(root / "imagesTr" / "brain_001_0000.nii.gz", np.ones((4, 4, 3), np.float32))
    labels = np.zeros((4, 4, 3), np.uint8)
    labels[1, 1, 2] = 1
    _volume(root / "labelsTr" / "brain_001.nii.gz", labels)
    sheet = build_sheet("nifti", root, slices_dir=tmp_path / "s")
    assert list(sheet["label"]) == ["normal", "normal", "lesion"]


def _chexpert(tmp_path):
    root = tmp_path / "CheXpert-v1.0-small"
    rows = [
        ("train/patient00001/study1/view1_frontal.jpg", "1.0"),
        ("train/patient00001/study2/view1_frontal.jpg", "-1.0"),
        ("train/patient00002/study1/view1_frontal.jpg", ""),
        ("train/patient00003/study1/view2_lateral.jpg", "0.0"),
    ]
    for path, _ in [*rows, ("valid/patient64541/study1/view1_frontal.jpg", "")]:
        _png(root / path, 90)
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(OBSERVATIONS)

    def line(path, effusion):
        values = [""] * 14
        values[10] = effusion  # Pleural Effusion
        return f"CheXpert-v1.0-small/{path},Female,68,Frontal,AP," + ",".join(values)

    (root / "train.csv").write_text("\n".join([header, *[line(p, v) for p, v in rows]]) + "\n")
    (root / "valid.csv").write_text(
        header + "\n" + line("valid/patient64541/study1/view1_frontal.jpg", "1.0") + "\n"
    )
    return root


@pytest.mark.parametrize(
    ("policy", "labels"),
    [
        ("ones", ["lesion", "lesion", "normal", "normal", "lesion"]),
        ("zeros", ["lesion", "normal", "normal", "normal", "lesion"]),
        ("ignore", ["lesion", "normal", "normal", "lesion"]),
    ],
)
def test_chexpert_uncertainty_policies(tmp_path, policy, labels):
    sheet = build_sheet("chexpert", _chexpert(tmp_path), uncertain=policy)
    assert list(sheet["label"]) == labels
    assert sheet["group"].iloc[0] == "patient00001" and sheet["split"].iloc[-1] == "val"
    assert sheet["image"].iloc[0] == "train/patient00001/study1/view1_frontal.jpg"


def test_chexpert_sheet_validates(tmp_path):
    root = _chexpert(tmp_path)
    out = tmp_path / "sheet.tsv"
    assert (
        main(
            ["sheet", str(root), "--layout", "chexpert", "--out", str(out), "--uncertain", "zeros"]
        )
        == 0
    )
    assert len(read_sheet(out, ["normal", "lesion"])) == 5
