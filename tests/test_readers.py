import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from xaiseg.errors import InputError
from xaiseg.io import load_image, load_mask
from xaiseg.io.nifti import write_nifti_2d


def _dicom(path, pixels, photometric="MONOCHROME2", slope=1.0, intercept=0.0, with_pixels=True):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = (
        SecondaryCaptureImageStorage,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality = "OT"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if with_pixels:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_rescale_applied(tmp_path):
    pixels = np.array([[0, 10], [100, 1000]], np.uint16)
    _dicom(tmp_path / "a.dcm", pixels, slope=2.0, intercept=-1024)
    np.testing.assert_array_equal(load_image(tmp_path / "a.dcm")[0], [[-1024, -1004], [-824, 976]])


def test_dicom_monochrome1_inverted(tmp_path):
    pixels = np.array([[0, 10], [20, 30]], np.uint16)
    _dicom(tmp_path / "m1.dcm", pixels, photometric="MONOCHROME1")
    np.testing.assert_array_equal(load_image(tmp_path / "m1.dcm")[0], [[30, 20], [10, 0]])


def test_dicom_without_pixels_named(tmp_path):
    _dicom(tmp_path / "nopix.dcm", np.zeros((2, 2)), with_pixels=False)
    with pytest.raises(InputError, match=r"nopix\.dcm: DICOM file has no pixel data"):
        load_image(tmp_path / "nopix.dcm")


def test_truncated_dicom_named(tmp_path):
    _dicom(tmp_path / "t.dcm", np.arange(64 * 64).reshape(64, 64) % 4000)
    data = (tmp_path / "t.dcm").read_bytes()
    (tmp_path / "t.dcm").write_bytes(data[: len(data) - 3000])
    with pytest.raises(InputError, match=r"t\.dcm"):
        load_image(tmp_path / "t.dcm")


def test_png_8_and_16_bit_keep_values(tmp_path):
    eight = np.array([[0, 128], [255, 7]], np.uint8)
    sixteen = np.array([[0, 40000], [65535, 7]], np.uint16)
    Image.fromarray(eight).save(tmp_path / "8.png")
    Image.fromarray(sixteen).save(tmp_path / "16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "8.png")[0], eight)
    np.testing.assert_array_equal(load_image(tmp_path / "16.png")[0], sixteen)


def test_rgba_drops_alpha_and_mask_is_any_channel(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = [0, 0, 9, 255]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    image = load_image(tmp_path / "c.png")
    assert image.shape == (3, 2, 2)
    np.testing.assert_array_equal(load_mask(tmp_path / "c.png"), [[True, False], [False, False]])


def test_truncated_png_named(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(
        tmp_path / "t.png"
    )
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"t\.png: image cannot be decoded"):
        load_image(tmp_path / "t.png")


def test_nifti_2d_round_trip_keeps_orientation(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_nifti_2d(tmp_path / "a.nii.gz", image)
    np.testing.assert_array_equal(load_image(tmp_path / "a.nii.gz")[0], image)


def test_nifti_nan_named(tmp_path):
    image = np.ones((4, 4), np.float32)
    image[1, 1] = np.nan
    write_nifti_2d(tmp_path / "nan.nii.gz", image)
    with pytest.raises(InputError, match=r"nan\.nii\.gz: .*NaN"):
        load_image(tmp_path / "nan.nii.gz")


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match=r"unsupported file type '\.txt'"):
        load_image(tmp_path / "x.txt")


def test_demo_dicom_has_required_tags(tmp_path):
    from xaiseg.demo import _write_dicom

    _write_dicom(tmp_path / "d.dcm", np.full((8, 8), 0.5, np.float32), "P001", 1)
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    assert ds.Modality == "MR" and (ds.Rows, ds.Columns) == (8, 8)
    assert float(ds.RescaleSlope) == 0.5 and float(ds.RescaleIntercept) == -200
    assert "WindowCenter" in ds and str(ds.PatientName) == "DEMO^P001"
    # stored = (0.5 * 2000 + 200) / 0.5 = 2400, modality value = 2400 * 0.5 - 200 = 1000
    np.testing.assert_allclose(load_image(tmp_path / "d.dcm")[0], 1000.0)


def test_palette_one_bit_and_16bit_tiff(tmp_path):
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png")[:, 0, 1], [255, 0, 0])
    Image.fromarray(np.array([[True, False], [False, True]])).save(tmp_path / "b.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "b.png"), [[True, False], [False, True]])
    tiff = np.array([[0, 1000], [65535, 3]], np.uint16)
    Image.fromarray(tiff).save(tmp_path / "t.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "t.tif")[0], tiff)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[1, 1] = [10, 20, 30]
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=100)
    assert load_image(tmp_path / "rgb.jpg").shape == (3, 2, 2)


def test_lgg_tiff_reads_three_channels(lgg_subset):
    image = next(p for p in lgg_subset.glob("*/*.tif") if not p.name.endswith("_mask.tif"))
    assert load_image(image).shape == (3, 256, 256)
