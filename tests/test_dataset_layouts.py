"""BraTS, Decathlon / nnU-Net and NuInsSeg laid out exactly as they ship: channels
stacked in the configured order, multi-class label maps turned into the configured
foreground, both the 2D slices and the whole volumes through preprocessing, and every
broken case named."""

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from xaiseg.cli import main
from xaiseg.data.shards import ShardStore
from xaiseg.errors import InputError
from xaiseg.io import load_image
from xaiseg.io.layouts import build_sheet
from xaiseg.io.readers import load_mask
from xaiseg.io.sheet import read_sheet

SHAPE = (9, 8, 8)  # x, y, z: slices along z; 8 is preprocessing's smallest side
BRATS_AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])  # BraTS files are LPS; read as RAS+


def _save(path, data, affine=BRATS_AFFINE):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))


def _label_map():
    """Label 4 (enhancing) in slice z=1, 1 (necrosis) in z=2, 2 (oedema) in z=3."""
    labels = np.zeros(SHAPE, np.uint8)
    labels[2, 2, 1], labels[3, 1, 2], labels[1, 3, 3] = 4, 1, 2
    return labels


def _brats2021(root, cases=("BraTS2021_00000", "BraTS2021_00001", "BraTS2021_00002"), healthy=()):
    """BraTS2021_Training_Data/<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz; each
    sequence a constant (flair 1, t1 2, t1ce 3, t2 4) so the channel order shows."""
    for case in [*cases, *healthy]:
        folder = root / "BraTS2021_Training_Data" / case
        for value, sequence in enumerate(("flair", "t1", "t1ce", "t2"), start=1):
            _save(folder / f"{case}_{sequence}.nii.gz", np.full(SHAPE, value, np.float32))
        labels = _label_map() if case in cases else np.zeros(SHAPE, np.uint8)
        _save(folder / f"{case}_seg.nii.gz", labels)
    return root


def test_brats_2021_sequences_stacked_in_the_configured_order(tmp_path):
    root = _brats2021(tmp_path / "brats")
    sheet = build_sheet("brats", root, derived_dir=tmp_path / "s", sequences=["t2", "FLAIR"])
    assert len(sheet) == 3 * SHAPE[2] and sheet["group"].nunique() == 3
    assert list(sheet["label"][:4]) == ["normal", "lesion", "lesion", "lesion"]
    image = load_image(sheet.loc[1, "image"])
    assert image.shape == (2, SHAPE[1], SHAPE[0])  # (C, H, W): rows along y
    assert image[0].tolist() == np.full(SHAPE[1::-1], 4.0).tolist()  # t2 first
    assert image[1].tolist() == np.full(SHAPE[1::-1], 1.0).tolist()
    # the enhancing voxel at (x=2, y=2) of z=1; from LPS to RAS+ both x and y turn round
    mask = load_mask(sheet.loc[1, "mask"])
    assert np.argwhere(mask).tolist() == [[SHAPE[1] - 1 - 2, SHAPE[0] - 1 - 2]]


def test_foreground_labels_choose_the_tumour_region(tmp_path):
    root = _brats2021(tmp_path / "brats", cases=("BraTS2021_00000",))
    core = build_sheet("brats", root, derived_dir=tmp_path / "s", foreground_labels=[1, 4])
    # slice 3 holds oedema only, which is not tumour core
    assert list(core["label"][:5]) == ["normal", "lesion", "lesion", "normal", "normal"]
    assert not load_mask(core.loc[3, "mask"]).any()


def test_brats_2023_hyphen_names_and_any_depth(tmp_path):
    folder = tmp_path / "ASNR-MICCAI-BraTS2023-GLI" / "train" / "BraTS-GLI-00000-000"
    for value, sequence in enumerate(("t1c", "t1n", "t2f", "t2w"), start=1):
        _save(folder / f"BraTS-GLI-00000-000-{sequence}.nii.gz", np.full(SHAPE, value, np.float32))
    _save(folder / "BraTS-GLI-00000-000-seg.nii.gz", _label_map())
    sheet = build_sheet("brats", tmp_path, derived_dir=tmp_path / "s")
    assert set(sheet["group"]) == {"BraTS-GLI-00000-000"}
    # no sequences named: every one of the case, by name
    assert load_image(sheet.loc[0, "image"])[:, 0, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_missing_sequence_or_label_map_names_the_case(tmp_path):
    root = _brats2021(tmp_path / "brats")
    case = root / "BraTS2021_Training_Data" / "BraTS2021_00001"
    (case / "BraTS2021_00001_t1ce.nii.gz").unlink()
    with pytest.raises(InputError, match=r"BraTS2021_00001: case BraTS2021_00001: no \['t1ce'\]"):
        build_sheet("brats", root, derived_dir=tmp_path / "s", sequences=["flair", "t1ce"])
    (case / "BraTS2021_00001_seg.nii.gz").unlink()
    with pytest.raises(InputError, match="case BraTS2021_00001: no label map"):
        build_sheet("brats", root, derived_dir=tmp_path / "s")


def test_sequences_whose_shape_or_affine_disagree_name_the_case(tmp_path):
    root = _brats2021(tmp_path / "brats", cases=("BraTS2021_00000",))
    case = root / "BraTS2021_Training_Data" / "BraTS2021_00000"
    _save(case / "BraTS2021_00000_t2.nii.gz", np.ones((9, 8, 3), np.float32))
    with pytest.raises(InputError, match=r"_t2\.nii\.gz: case BraTS2021_00000: shape \(9, 8, 3\)"):
        build_sheet("brats", root, derived_dir=tmp_path / "s")
    shifted = BRATS_AFFINE.copy()
    shifted[0, 3] = 12.0
    _save(case / "BraTS2021_00000_t2.nii.gz", np.ones(SHAPE, np.float32), shifted)
    with pytest.raises(InputError, match="case BraTS2021_00000: its affine"):
        build_sheet("brats", root, derived_dir=tmp_path / "s")


def _decathlon(root):
    """Task01_BrainTumour: 4D imagesTr/BRATS_00N.nii.gz, labelsTr/, dataset.json, and
    the macOS "._" files its archive carries."""
    modality = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    (root / "imagesTr").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"name": "BRATS", "modality": modality}))
    for case in ("BRATS_001", "BRATS_002"):
        channels = np.stack([np.full(SHAPE, v, np.float32) for v in (1, 2, 3, 4)], axis=-1)
        _save(root / "imagesTr" / f"{case}.nii.gz", channels)
        _save(root / "labelsTr" / f"{case}.nii.gz", _label_map())
        (root / "imagesTr" / f"._{case}.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    (root / "imagesTs").mkdir()
    return root


def test_decathlon_4d_files_channels_chosen_by_dataset_json_names(tmp_path):
    root = _decathlon(tmp_path / "Task01_BrainTumour")
    sheet = build_sheet("decathlon", root, derived_dir=tmp_path / "s", sequences=["T2w", "t1gd"])
    assert sheet["group"].unique().tolist() == ["BRATS_001", "BRATS_002"]
    assert load_image(sheet.loc[0, "image"])[:, 0, 0].tolist() == [4.0, 3.0]
    with pytest.raises(InputError, match=r"dataset\.json: no channel 'adc'"):
        build_sheet("decathlon", root, derived_dir=tmp_path / "s", sequences=["adc"])


def test_nnunet_per_channel_files_stacked_and_a_missing_one_named(tmp_path):
    root = tmp_path / "Dataset001_Brain"
    names = {"channel_names": {"0": "T1", "1": "T2"}, "labels": {"background": 0, "tumour": 1}}
    (root / "imagesTr").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(names))
    for case in ("brain_001", "brain_002"):
        for index in (0, 1):
            path = root / "imagesTr" / f"{case}_{index:04d}.nii.gz"
            _save(path, np.full(SHAPE, 10 + index, np.float32))
        _save(root / "labelsTr" / f"{case}.nii.gz", _label_map())
    sheet = build_sheet("nifti", root, derived_dir=tmp_path / "s")  # nifti hands it on
    assert sheet["group"].nunique() == 2
    assert load_image(sheet.loc[0, "image"])[:, 0, 0].tolist() == [10.0, 11.0]
    (root / "imagesTr" / "brain_002_0001.nii.gz").unlink()
    with pytest.raises(InputError, match=r"case brain_002: missing channel file brain_002_0001"):
        build_sheet("decathlon", root, derived_dir=tmp_path / "s", sequences=["T1", "T2"])


def _preprocess(sheet, out, channels, dims):
    args = ["preprocess", "--sheet", str(sheet), "--out", str(out), "--classes", "normal"]
    args += ["lesion", "--image-size", "8", "--channels", str(channels)]
    args += ["--spatial-dims", str(dims), "--val-fraction", "0.25", "--test-fraction", "0.25"]
    return main(args)


@pytest.mark.parametrize(("axis", "dims", "rows"), [("2", 2, 8 * SHAPE[2]), ("null", 3, 8)])
def test_brats_through_preprocessing_as_slices_and_as_volumes(tmp_path, axis, dims, rows):
    cases = [f"BraTS2021_0000{i}" for i in range(8)]
    root = _brats2021(tmp_path / "brats", cases=cases[:4], healthy=cases[4:])
    sheet = tmp_path / "run" / "layout_sheet.tsv"
    args = ["sheet", str(root), "--layout", "brats", "--out", str(sheet), "--axis", axis]
    assert main([*args, "--sequences", "flair", "t2"]) == 0
    assert len(read_sheet(sheet, ["normal", "lesion"])) == rows
    assert _preprocess(sheet, tmp_path / "run", channels=2, dims=dims) == 0
    store = ShardStore(tmp_path / "run" / "data")
    assert len(store.sample_ids) == rows
    images = next(store.iter_shards())["image"]
    assert tuple(images.shape[1:]) == (2, *[8] * dims)


def test_whole_volumes_keep_channels_and_foreground(tmp_path):
    root = _brats2021(tmp_path / "brats", cases=("BraTS2021_00000",))
    sheet = build_sheet("brats", root, derived_dir=tmp_path / "s", axis=None)
    volume = load_image(sheet.loc[0, "image"], spatial_dims=3)
    assert volume.shape == (4, *SHAPE) and volume[:, 0, 0, 0].tolist() == [1, 2, 3, 4]
    assert load_mask(sheet.loc[0, "mask"], spatial_dims=3).sum() == 3


def _nuinsseg(root):
    """<organ>/tissue images/<name>.png with mask binary/ (PNG, 0/255) and label masks
    modify/ (TIFF instance labels) beside it, as the Kaggle archive ships."""
    for organ, names in {
        "human bladder": ["human_bladder_01", "human_bladder_02"],
        "mouse spleen": ["mouse_spleen_01"],
    }.items():
        for k, name in enumerate(names):
            folder = root / organ
            (folder / "tissue images").mkdir(parents=True, exist_ok=True)
            (folder / "mask binary").mkdir(exist_ok=True)
            (folder / "label masks modify").mkdir(exist_ok=True)
            (folder / "distance maps").mkdir(exist_ok=True)
            rgb = np.full((16, 16, 3), 200, np.uint8)
            Image.fromarray(rgb).save(folder / "tissue images" / f"{name}.png")
            instances = np.zeros((16, 16), np.uint16)
            if k == 0:
                instances[2:5, 2:5], instances[8:11, 8:11] = 1, 2
            Image.fromarray(instances).save(folder / "label masks modify" / f"{name}.tif")
            binary = (instances > 0).astype(np.uint8) * 255
            Image.fromarray(binary).save(folder / "mask binary" / f"{name}.png")
    return root


def test_nuinsseg_labels_from_the_masks_grouped_by_organ(tmp_path):
    root = _nuinsseg(tmp_path / "NuInsSeg")
    sheet = build_sheet("nuinsseg", root)
    assert list(sheet["sample_id"]) == [
        "human_bladder_human_bladder_01",
        "human_bladder_human_bladder_02",
        "mouse_spleen_mouse_spleen_01",
    ]
    assert list(sheet["label"]) == ["lesion", "normal", "lesion"]
    assert list(sheet["group"]) == ["human_bladder", "human_bladder", "mouse_spleen"]
    assert sheet.loc[0, "mask"] == "human bladder/mask binary/human_bladder_01.png"
    assert load_mask(root / sheet.loc[0, "mask"]).sum() == 18


def test_nuinsseg_labels_from_the_organ_and_the_instance_masks(tmp_path):
    root = _nuinsseg(tmp_path / "NuInsSeg")
    for mask in root.glob("*/mask binary/*.png"):
        mask.unlink()
    sheet = build_sheet("nuinsseg", root, label_from="organ", group_by="image")
    assert list(sheet["label"]) == ["human_bladder", "human_bladder", "mouse_spleen"]
    assert sheet["group"].nunique() == 3
    assert load_mask(root / sheet.loc[0, "mask"]).sum() == 18  # instance labels 1, 2
    with pytest.raises(InputError, match="labels from the organ need group_by: image"):
        build_sheet("nuinsseg", root, label_from="organ")
    (root / "mouse spleen" / "label masks modify" / "mouse_spleen_01.tif").unlink()
    with pytest.raises(InputError, match=r"mouse_spleen_01\.png: no nucleus mask"):
        build_sheet("nuinsseg", root, label_from="organ", group_by="image")
