"""Every reader decodes what a file holds, or refuses it with the reason: no bits lost,
no ink read as light, no page or time point chosen in silence, and no file decoded
past the pixel budget."""

import struct
import tracemalloc
import zlib

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.test_readers import _dicom
from xaiseg.errors import InputError
from xaiseg.io import load_image
from xaiseg.io.nifti import write_nifti_2d


def _gradient(height=24, width=32, channels=3, top=65535):
    """A 16-bit colour image whose every sample differs (no two levels alike)."""
    values = np.arange(height * width * channels, dtype=np.float64)
    return (values / values.max() * top).astype(np.uint16).reshape(height, width, channels)


def test_a_16_bit_rgb_tiff_keeps_all_its_levels(tmp_path):
    truth = _gradient()
    tifffile.imwrite(tmp_path / "rgb16.tif", truth, photometric="rgb")
    image = load_image(tmp_path / "rgb16.tif")
    assert image.shape == (3, 24, 32)
    np.testing.assert_array_equal(image, np.moveaxis(truth, -1, 0).astype(np.float32))


def test_a_cmyk_jpeg_reads_as_light_not_ink(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    truth = np.stack([ramp, ramp, ramp], axis=-1)
    Image.fromarray(truth).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    image = load_image(tmp_path / "cmyk.jpg")
    assert image.shape == (3, 48, 64)
    assert np.corrcoef(image[0].ravel(), ramp.ravel())[0, 1] > 0.99


def test_a_multi_page_tiff_needs_its_page_named(tmp_path):
    pages = np.stack([np.full((16, 16), 10 * (k + 1), np.uint16) for k in range(3)])
    tifffile.imwrite(tmp_path / "pages.tif", pages, photometric="minisblack")
    with pytest.raises(InputError, match=r"multi-page image \(3 pages\): name the page"):
        load_image(tmp_path / "pages.tif")
    assert np.unique(load_image(tmp_path / "pages.tif", frame=2)).tolist() == [30.0]
    with pytest.raises(InputError, match="page 3 out of range"):
        load_image(tmp_path / "pages.tif", frame=3)


def test_a_nifti_time_series_is_not_averaged(tmp_path):
    series = np.stack([np.full((12, 10, 1), t * 100.0, np.float32) for t in range(4)], -1)
    nib.save(nib.Nifti1Image(series, np.eye(4)), tmp_path / "series.nii.gz")
    with pytest.raises(InputError, match=r"NIfTI time series \(4 time points"):
        load_image(tmp_path / "series.nii.gz")
    image = load_image(tmp_path / "series.nii.gz", frame=3)
    assert image.shape == (1, 10, 12) and np.unique(image).tolist() == [300.0]


def test_multi_channel_nifti_written_by_xaiseg_reads_back_exactly(tmp_path):
    image = np.arange(3 * 9 * 11, dtype=np.float32).reshape(3, 9, 11)
    write_nifti_2d(tmp_path / "c.nii.gz", image)
    np.testing.assert_array_equal(load_image(tmp_path / "c.nii.gz"), image)


def _png_rgb16(path, pixels):
    """A 16-bit RGB PNG written by hand (Pillow writes none)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    height, width, _ = pixels.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_a_16_bit_colour_png_is_refused_not_cut_to_8_bits(tmp_path):
    _png_rgb16(tmp_path / "rgb16.png", _gradient(8, 8))
    with pytest.raises(InputError, match="16-bit colour PNG: the decoder keeps 8 bits"):
        load_image(tmp_path / "rgb16.png")


def test_a_huge_nifti_is_refused_before_decoding(tmp_path):
    volume = np.zeros((12000, 9000, 1), np.uint8)  # 108 million voxels, 100 KB packed
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "huge.nii.gz")
    del volume
    tracemalloc.start()
    with pytest.raises(InputError, match=r"too large to decode safely: 108,000,000 voxels"):
        load_image(tmp_path / "huge.nii.gz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6
    assert load_image(tmp_path / "huge.nii.gz", max_pixels=10**9, frame=None).shape == (
        1,
        9000,
        12000,
    )


def test_one_budget_holds_for_png_tiff_and_dicom(tmp_path):
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((40, 50), np.uint16))
    _dicom(tmp_path / "a.dcm", np.zeros((40, 50), np.uint16))
    for name in ("a.png", "a.tif", "a.dcm"):
        with pytest.raises(InputError, match="2,000 pixels, over the budget of 1,999"):
            load_image(tmp_path / name, max_pixels=1999)
        assert load_image(tmp_path / name, max_pixels=2000).shape == (1, 40, 50)


def test_a_dicom_file_without_a_suffix_is_read_by_its_preamble(tmp_path):
    pixels = np.array([[0, 10], [100, 1000]], np.uint16)
    _dicom(tmp_path / "IM0001", pixels)
    _dicom(tmp_path / "1.2.840.113619.2.1", pixels)
    for name in ("IM0001", "1.2.840.113619.2.1"):
        np.testing.assert_array_equal(load_image(tmp_path / name)[0], pixels)
    (tmp_path / "notes").write_text("not an image")
    with pytest.raises(InputError, match="unsupported file type ''"):
        load_image(tmp_path / "notes")
