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
    sheet = read_sheet(out, ["normal", "lesion"], roots=[lgg_subset])
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
    sheet = read_sheet(out, ["benign", "normal"], roots=[root])
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
        # x flipped to run left to right: its first voxel now sits at x = -2 * (6 - 1)
        "affine": [[2.0, 0, 0, -10.0], [0, 1.5, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1.0]],
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
        build_sheet("nifti", root, derived_dir=tmp_path / "s")


def test_nnunet_style_nifti_layout(tmp_path):
    root = tmp_path / "Task01"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    _volume(root / "imagesTr" / "brain_001_0000.nii.gz", np.ones((4, 4, 3), np.float32))
    labels = np.zeros((4, 4, 3), np.uint8)
    labels[1, 1, 2] = 1
    _volume(root / "labelsTr" / "brain_001.nii.gz", labels)
    sheet = build_sheet("nifti", root, derived_dir=tmp_path / "s")
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


def _mammo(path, pixels):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.Rows, ds.Columns = "MG", *pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_cbis_ddsm_joins_rois_by_folder_and_merges(tmp_path):
    root = tmp_path / "CBIS-DDSM"
    full = "Mass-Training_P_00001_LEFT_CC"
    study = root / full / "07-20-2016-DDSM-74994"
    _mammo(study / "1.000000-full mammogram images-24515" / "1-1.dcm", np.full((20, 16), 90))
    for k, box in ((1, (slice(2, 4), slice(2, 4))), (2, (slice(10, 12), slice(8, 10)))):
        series = root / f"{full}_{k}" / "07-21-2016-DDSM-76783" / "1.000000-ROI mask images-92138"
        _mammo(series / "1-1.dcm", np.full((5, 5), 60))  # the cropped lesion
        mask = np.zeros((20, 16))
        mask[box] = 255
        _mammo(series / "1-2.dcm", mask)
    other = "Mass-Test_P_00016_LEFT_MLO"
    _mammo(root / other / "a" / "b" / "1-1.dcm", np.full((20, 16), 50))
    _mammo(root / f"{other}_1" / "a" / "b" / "1-1.dcm", np.eye(20, 16) * 255)
    _mammo(root / f"{other}_1" / "a" / "b" / "1-2.dcm", np.full((4, 4), 1))
    header = (
        "patient_id,breast_density,left or right breast,image view,abnormality id,"
        "abnormality type,pathology,image file path,cropped image file path,ROI mask file path\n"
    )
    uid = "1.3.6.1.4.1.9590.100.1.2.4221/1.3.6.1.4.1.9590.100.1.2.3423"
    image, roi1, roi2 = f"{full}/{uid}/000000.dcm", f"{full}_1/{uid}", f"{full}_2/{uid}"
    (root / "mass_case_description_train_set.csv").write_text(
        header
        + f"P_00001,3,LEFT,CC,1,mass,BENIGN,{image},{roi1}/0.dcm,{roi1}/1.dcm\n"
        # the real CSVs carry stray newlines inside quoted paths
        + f'P_00001,3,LEFT,CC,2,mass,MALIGNANT,{image},{roi2}/0.dcm,"{roi2}/1.dcm\n"\n'
    )
    (root / "mass_case_description_test_set.csv").write_text(
        header + f"P_00016,2,LEFT,MLO,1,mass,BENIGN_WITHOUT_CALLBACK,{other}/{uid}/0.dcm,"
        f"{other}_1/x/0.dcm,{other}_1/x/1.dcm\n"
    )
    out = tmp_path / "sheet" / "sheet.tsv"
    args = ["--negative", "benign", "--positive", "malignant"]
    assert main(["sheet", str(root), "--layout", "cbis-ddsm", "--out", str(out), *args]) == 0
    sheet = read_sheet(out, ["benign", "malignant"], roots=[root])
    assert list(sheet["label"]) == ["benign", "malignant"]
    assert list(sheet["split"]) == ["test", ""]
    assert list(sheet["group"]) == ["P_00016", "P_00001"]
    from xaiseg.io import load_mask

    merged = load_mask(sheet.loc[1, "mask"])
    assert merged.shape == (20, 16) and merged.sum() == 8 and merged[2, 2] and merged[10, 8]


def test_busi_finding_classes_map_benign_and_malignant_to_the_lesion(tmp_path):
    """data.finding: the layout's three labels become two classes, and preprocessing
    counts benign and malignant images as the finding."""
    import json

    root = tmp_path / "busi"
    for k in range(1, 5):
        for kind, value in (("benign", 90), ("malignant", 140), ("normal", 40)):
            _png(root / kind / f"{kind} ({k}).png", value, size=(16, 16))
            box = None if kind == "normal" else (slice(4, 8), slice(4, 8))
            _png(root / kind / f"{kind} ({k})_mask.png", size=(16, 16), box=box)
    out = tmp_path / "out" / "sheet.tsv"
    assert main(["sheet", str(root), "--layout", "busi", "--out", str(out)]) == 0
    classes, finding = ["normal", "lesion"], ["benign", "malignant"]
    sheet = read_sheet(out, classes, roots=[root], finding=finding)
    assert sheet["label"].value_counts().to_dict() == {"lesion": 8, "normal": 4}
    with pytest.raises(
        InputError, match=r"label 'benign' is not one of the classes \['normal', 'lesion'\]"
    ):
        read_sheet(out, classes, roots=[root])
    args = ["preprocess", "--sheet", str(out), "--out", str(tmp_path / "run"), "--roots", str(root)]
    args += ["--classes", *classes, "--finding", *finding, "--image-size", "16"]
    assert main([*args, "--val-fraction", "0.25", "--test-fraction", "0.25"]) == 0
    index = json.loads((tmp_path / "run" / "data" / "index.json").read_text())
    labels = {s["sample_id"]: s["label_index"] for s in index["samples"]}
    assert labels["malignant_malignant_3"] == labels["benign_benign_1"] == 1
    assert labels["normal_normal_2"] == 0


def test_a_finding_label_that_names_the_other_class_is_refused():
    from xaiseg.settings import ConfigError, workflow_settings

    config = {"data": {"classes": ["normal", "lesion"], "finding": ["normal", "malignant"]}}
    with pytest.raises(ConfigError, match=r"data.finding: \['normal'\] also name a class"):
        workflow_settings(config)
