"""``xaiseg export`` and ``xaiseg predict``: masks back in each input's own geometry.

The package's segmenter is a small U-Net trained here, in seconds, to find bright disks
on darker textured ground (scaled as preprocessing scales images), so that every
written mask can be held against a lesion whose voxels are known.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from xaiseg.cli import main
from xaiseg.data.preprocess import normalise, resample
from xaiseg.errors import InputError
from xaiseg.models import NetworkSpec, build_network, save_network
from xaiseg.predict import export_model, predict, read_package
from xaiseg.predict.run import join_predictions
from xaiseg.predict.sources import Source, collect_sources, part_of
from xaiseg.provenance import write_json, write_provenance
from xaiseg.settings import PreprocessSettings

SIZE = 32


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


SETTINGS = PreprocessSettings(image_size=SIZE, channels=1)


def disk_image(rng, shape, centre, radius) -> tuple[np.ndarray, np.ndarray]:
    """Textured ground about 0.3, a disk about 1.0 (any size, any centre)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    lesion = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    image = 0.3 + 0.05 * rng.standard_normal(shape) + 0.7 * lesion
    return image.astype(np.float32), lesion


def _train_segmenter(seed: int = 0) -> torch.nn.Module:
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(128):
        side = int(rng.integers(24, 80))
        centre = rng.uniform(0.25, 0.75, 2) * side
        radius = rng.uniform(0.08, 0.2) * side if i % 4 else 0  # a quarter without lesion
        image, lesion = disk_image(rng, (side, side), centre, radius)
        images.append(normalise(resample(image[np.newaxis], SETTINGS), SETTINGS))
        grid = resample(lesion[np.newaxis].astype(np.float32), SETTINGS) > 0.5
        masks.append(grid.astype(np.int64))
    x, y = torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))[:, 0]
    torch.manual_seed(seed)
    net = build_network(_spec("segmenter", "unet"))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(160):
        batch = torch.from_numpy(np.random.default_rng(step).choice(len(x), 32))
        loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


def _spec(kind: str, network: str) -> NetworkSpec:
    options = {"channels": [8, 16], "strides": [2]} if network == "unet" else {}
    options = {"widen_factor": 0.25} if network == "resnet18" else options
    return NetworkSpec(kind, network, 1, ("normal", "lesion"), 2, options)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder as the workflow leaves it, with a trained segmenter."""
    run = tmp_path_factory.mktemp("runs") / "toy"
    (run / "data").mkdir(parents=True)
    write_provenance(run / "data", stage="preprocess", params=asdict(SETTINGS))
    classifier = build_network(_spec("classifier", "resnet18"))
    save_network(classifier, _spec("classifier", "resnet18"), run / "classifier")
    write_json(run / "classifier" / "metrics.json", {"val_threshold": 0.25})
    write_provenance(run / "classifier", stage="classifier", params={})
    folder = run / "segmenter" / "pseudo-disks"
    save_network(_train_segmenter(), _spec("segmenter", "unet"), folder)
    write_provenance(folder, stage="segmenter", params={"gate_threshold": None})
    summary = pd.DataFrame(
        [
            {"recipe": r, "model": "segmenter", "setting": "no masks", "split": "val", "dice": d}
            for r, d in (("other", 0.4), ("disks", 0.9))
        ]
    )
    summary.to_csv(run / "summary.csv", index=False)
    return run


@pytest.fixture(scope="module")
def package(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "model"
    export_model(run_dir, "headline", out)
    return out


def test_a_segmenter_gated_by_val_fpr_exports_the_cut_it_chose(run_dir, tmp_path):
    folder = run_dir / "segmenter" / "pseudo-gated"
    save_network(_train_segmenter(), _spec("segmenter", "unet"), folder)
    write_provenance(folder, stage="segmenter", params={"gate_threshold": "val_fpr"})
    write_json(folder / "metrics.json", {"gate_threshold": 0.61})
    export_model(run_dir, "pseudo-gated", tmp_path / "model")
    inference = read_package(tmp_path / "model").inference
    assert inference.gate_threshold == 0.61 and inference.gate_applied


def test_export_writes_a_self_describing_package(package, run_dir):
    opened = read_package(package)
    assert opened.inference.segmenter == "pseudo-disks"  # best val Dice, read from the summary
    assert opened.inference.gate_threshold == 0.25 and not opened.inference.gate_applied
    assert opened.inference.preprocess["image_size"] == SIZE
    assert "val_fraction" not in opened.inference.preprocess  # the run's, not an image's
    assert opened.metadata["classes"] == ["normal", "lesion"]
    assert {"torch", "monai"} <= set(opened.metadata["versions"])
    for kind in ("classifier", "segmenter"):
        files = sorted(p.name for p in (package / "models" / kind).iterdir())
        assert files == ["model.json", "model.safetensors"]
    record = json.loads((package / "provenance.json").read_text())
    assert "models/segmenter/model.safetensors" in record["outputs"]
    assert not list(package.parent.glob(".*partial"))  # written atomically


def test_a_tampered_package_is_refused(package, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(package, copy)
    weights = copy / "models" / "segmenter" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(Exception, match="corrupt"):
        read_package(copy).networks()


def test_a_png_of_300_by_217_comes_back_300_by_217(package, tmp_path):
    rng = np.random.default_rng(1)
    image, lesion = disk_image(rng, (217, 300), (120, 170), 30)  # 217 rows, 300 columns
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    table = predict(
        package,
        [tmp_path / "a.png"],
        tmp_path / "out",
        outputs=["probability", "overlay"],
        saliency="integrated_gradients",
    )
    mask = np.asarray(Image.open(tmp_path / "out" / "a_mask.png"))
    assert Image.open(tmp_path / "out" / "a_mask.png").size == (300, 217)
    assert set(np.unique(mask)) <= {0, 255}
    assert dice(mask > 0, lesion) > 0.85
    probability = np.asarray(Image.open(tmp_path / "out" / "a_probability.png"))
    assert probability.shape == (217, 300) and probability[lesion].mean() > 200
    for extra in ("saliency", "overlay"):  # a heat map of the classifier, the picture
        with Image.open(tmp_path / "out" / f"a_{extra}.png") as picture:
            assert picture.size == (300, 217)
    row = table.iloc[0]
    assert row["mask"] == "a_mask.png" and row["lesion_pixels"] == int((mask > 0).sum())
    assert row["probability_map"] == "a_probability.png" and row["overlay"] == "a_overlay.png"
    assert row["size_unit"] == "" and pd.isna(row["lesion_size"])  # a PNG has no spacing


def oblique_affine() -> np.ndarray:
    """Rotated 20 degrees about z, x flipped (LAS), anisotropic 0.8 x 0.9 x 3 mm."""
    angle = np.deg2rad(20)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.8, 0.9, 3.0])
    affine[:3, 3] = [40.0, -12.5, 7.0]
    return affine


def test_a_nifti_volume_keeps_its_affine_and_its_lesion(package, tmp_path):
    rng = np.random.default_rng(2)
    volume = np.zeros((40, 36, 6), np.float32)
    lesion = np.zeros(volume.shape, bool)
    for z in range(6):
        plane, disk = disk_image(rng, (40, 36), (12, 22), 7 if 1 <= z <= 3 else 0)
        volume[..., z], lesion[..., z] = plane, disk & (1 <= z <= 3)
    source = nib.Nifti1Image(volume, oblique_affine())
    nib.save(source, tmp_path / "scan.nii.gz")
    table = predict(package, [tmp_path / "scan.nii.gz"], tmp_path / "out")
    written = nib.load(tmp_path / "out" / "scan_mask.nii.gz")
    assert np.allclose(written.affine, oblique_affine(), atol=1e-6)
    assert "".join(nib.aff2axcodes(written.affine)) == "LAS"  # not turned into RAS
    mask = np.asarray(written.dataobj)
    assert mask.shape == volume.shape and mask.dtype == np.uint8
    assert dice(mask > 0, lesion) > 0.8
    row = table.iloc[0]
    assert row["kind"] == "volume" and row["images"] == 6
    assert row["size_unit"] == "mm3"
    assert row["lesion_size"] == pytest.approx(mask.sum() * 0.8 * 0.9 * 3.0, rel=1e-4)


def write_series(folder: Path, volume: np.ndarray, spacing=(0.7, 0.6), step=2.5) -> list[str]:
    """One MR instance per slice (rows, cols) of ``volume`` (slices, rows, cols), saved
    in shuffled file order; returns their SOP Instance UIDs in slice order."""
    folder.mkdir(parents=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    uids = []
    for index in (2, 0, 4, 1, 3)[: len(volume)]:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"im{index}"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientName, ds.PatientID, ds.PatientSex = "MR", "X^Y", "P1", "O"
        ds.PatientBirthDate = ds.AccessionNumber = ds.ReferringPhysicianName = ""
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.SeriesNumber = "20200101", "000000", "1", 1
        ds.InstanceNumber = 10 - index  # instance numbers disagree with position on purpose
        ds.ImagePositionPatient = [5.0, -3.0, step * index]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = list(spacing), step
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.round(volume[index] * 1000).astype(np.uint16).tobytes()
        ds.save_as(folder / f"im{index}.dcm", enforce_file_format=True)
        uids.append((index, ds.SOPInstanceUID))
    return [uid for _i, uid in sorted(uids)]


def test_a_dicom_series_gives_a_dicom_seg_of_its_instances(package, tmp_path):
    rng = np.random.default_rng(3)
    volume = np.zeros((5, 48, 40), np.float32)
    lesion = np.zeros(volume.shape, bool)
    for z in range(5):
        plane, disk = disk_image(rng, (48, 40), (30, 15), 8 if z in (2, 3) else 0)
        volume[z], lesion[z] = plane, disk & (z in (2, 3))
    uids = write_series(tmp_path / "series", volume)
    table = predict(package, [tmp_path / "series"], tmp_path / "out")
    row = table.iloc[0]
    assert row["kind"] == "series" and row["images"] == 5
    seg_path = tmp_path / "out" / row["seg"]
    assert pydicom.dcmread(seg_path).Modality == "SEG"
    seg = hd.seg.segread(seg_path)
    referenced = [
        item.ReferencedSOPInstanceUID
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    ]
    assert sorted(referenced) == sorted(uids)
    frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])[
        ..., 0
    ]
    assert frames.shape == volume.shape
    assert dice(frames > 0, lesion) > 0.8
    # The NIfTI copy lies where the instances do: x along columns, y along rows.
    copy = nib.load(tmp_path / "out" / row["mask"])
    assert np.array_equal(np.asarray(copy.dataobj).transpose(2, 1, 0), frames)
    assert np.allclose(copy.affine @ [0, 0, 0, 1], [-5.0, 3.0, 0.0, 1])  # LPS -> RAS
    assert np.allclose(np.abs(np.diag(copy.affine)[:3]), [0.6, 0.7, 2.5])
    assert row["size_unit"] == "mm3"
    assert row["lesion_size"] == pytest.approx(frames.sum() * 0.6 * 0.7 * 2.5, rel=1e-4)


def test_lgg_slices_as_tiff_come_back_as_tiff_beside_each_slice(package, lgg_subset, tmp_path):
    patient = sorted(p for p in lgg_subset.rglob("*") if p.is_dir() and list(p.glob("*.tif")))[0]
    slices = sorted(p for p in patient.glob("*.tif") if not p.stem.endswith("_mask"))[:3]
    inputs = tmp_path / "scans" / patient.name
    inputs.mkdir(parents=True)
    for path in slices:
        shutil.copy(path, inputs)
        shutil.copy(path.with_name(path.stem + "_mask.tif"), inputs)
    table = predict(package, [tmp_path / "scans"], tmp_path / "out", exclude=["*_mask.tif"])
    assert len(table) == 3  # the dataset's own masks were left out
    for path in slices:
        written = tmp_path / "out" / patient.name / f"{path.stem}_mask.tif"
        with Image.open(written) as mask:
            assert mask.format == "TIFF"
            assert mask.size == Image.open(path).size


def test_a_broken_file_is_named_and_the_others_are_written(package, tmp_path):
    rng = np.random.default_rng(4)
    image, _ = disk_image(rng, (40, 40), (20, 20), 6)
    Image.fromarray(np.round(image * 200).astype(np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    inputs = [tmp_path / "good.png", tmp_path / "broken.png"]
    with pytest.raises(InputError, match=r"broken\.png"):
        predict(package, inputs, tmp_path / "out")
    assert (tmp_path / "out" / "good_mask.png").is_file()
    table = pd.read_csv(tmp_path / "out" / "predictions.tsv", sep="\t", keep_default_na=False)
    assert table.set_index("name").loc["broken", "problem"].startswith(str(tmp_path))
    skipped = predict(package, inputs, tmp_path / "again", on_bad_input="skip")
    assert list(skipped["problem"].astype(bool)) == [False, True]


def test_strict_privacy_keeps_paths_out_of_the_table(package, tmp_path):
    rng = np.random.default_rng(5)
    image, _ = disk_image(rng, (40, 40), (20, 20), 6)
    folder = tmp_path / "secret-ward"
    folder.mkdir()
    Image.fromarray(np.round(image * 200).astype(np.uint8)).save(folder / "x1.png")
    predict(package, [folder], tmp_path / "out", privacy="strict")
    text = (tmp_path / "out" / "predictions.tsv").read_text()
    assert "x1" in text and str(tmp_path) not in text and "secret-ward" not in text


def test_a_sheet_in_parts_joins_into_one_table(package, tmp_path):
    rng = np.random.default_rng(6)
    rows = []
    for i in range(5):
        image, _ = disk_image(rng, (36, 36), (18, 18), 5)
        name = f"p{i // 2}/img{i}.png"
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.round(image * 200).astype(np.uint8)).save(tmp_path / name)
        rows.append({"sample_id": f"s{i}", "image": name, "group": f"p{i // 2}"})
    pd.DataFrame(rows).to_csv(tmp_path / "new.tsv", sep="\t", index=False)
    parts = [tmp_path / "out" / f"part-{n}" for n in range(2)]
    for number, folder in enumerate(parts):
        args = ["predict", str(tmp_path / "new.tsv"), "--model", str(package)]
        assert main([*args, "--out", str(folder), "--part", str(number), "2"]) == 0
    joined = join_predictions(parts, tmp_path / "out")
    assert sorted(joined["name"]) == [f"s{i}" for i in range(5)]
    for path in joined["mask"]:
        assert (tmp_path / "out" / path).is_file()


def test_parts_keep_groups_whole():
    sources = [Source("image", (Path(f"{g}{i}"),), f"{g}{i}", g) for g in "abc" for i in range(2)]
    sources += [Source("image", (Path("d0"),), "d0", "d")]
    parts = [part_of(sources, n, 3) for n in range(3)]
    assert [[s.name for s in p] for p in parts] == [["a0", "a1", "b0", "b1"], ["c0", "c1"], ["d0"]]


def test_inputs_that_would_overwrite_each_other_are_refused(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.new("L", (16, 16)).save(tmp_path / folder / "same.png")
    with pytest.raises(Exception, match="same outputs"):
        collect_sources([tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"])


def test_the_real_dicom_corpus_is_read_or_named_never_fatal(package, dicom_corpus, tmp_path):
    """887 real files of every kind (broken ones included): each series gets a row, an
    unreadable one names its file and why, and where the standard allows it a DICOM SEG
    that highdicom reads back."""
    table = predict(package, [dicom_corpus], tmp_path / "out", on_bad_input="skip")
    problems = table[table["problem"].astype(bool)]
    assert len(table) > 50 and len(problems) < len(table) / 2
    assert all(p.startswith(str(dicom_corpus)) for p in problems["problem"])  # file, reason
    segs = [s for s in table.get("seg", []) if isinstance(s, str) and s]
    assert segs
    for seg in segs[:3]:
        assert hd.seg.segread(tmp_path / "out" / seg).Modality == "SEG"
    notes = table["note"].dropna().astype(str)
    assert all(n.startswith("no DICOM SEG: ") for n in notes if n)
