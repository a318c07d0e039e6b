"""The DICOM reader against 887 real files from public test corpora."""

import warnings

import numpy as np
import pytest

from xaiseg.errors import InputError
from xaiseg.io.dicom import apply_window, decode_dicom, read_dicom

NOT_DICOM = {".txt", ".md", ".json", ".icc", ".gz", ".dump"}


def test_every_file_decodes_or_gets_a_named_error(dicom_corpus):
    decoded, named = 0, []
    for path in sorted(dicom_corpus.rglob("*")):
        if not path.is_file() or path.suffix in NOT_DICOM or path.name in {"README", "LICENSE"}:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                frames = decode_dicom(path)
            except InputError as err:
                assert err.where == str(path) and err.problem
                named.append(path.name)
                continue
        assert frames.ndim == 4 and frames.dtype == np.float32 and np.isfinite(frames).all()
        decoded += 1
    assert decoded >= 790  # measured: 792 decode, 83 named errors
    for broken in ["MR_truncated.dcm", "JPEG-lossy.dcm", "rtstruct.dcm", "badVR.dcm"]:
        assert broken in named


def test_nine_transfer_syntaxes_give_identical_pixels(dicom_corpus):
    folder = dicom_corpus / "dcm_qa_ts" / "In"
    images = [read_dicom(folder / f"{i}.dcm") for i in range(1, 10)]
    for image in images[1:]:
        np.testing.assert_array_equal(image, images[0])


def test_ybr_full_converted_to_rgb(dicom_corpus):
    data = dicom_corpus / "pydicom_data"
    rgb = read_dicom(data / "SC_rgb.dcm")
    ybr = read_dicom(data / "SC_ybr_full_uncompressed.dcm")
    jpeg = read_dicom(dicom_corpus / "pydicom_test_files" / "SC_rgb_jpeg_dcmtk.dcm")
    assert rgb.shape == ybr.shape == (3, 100, 100)
    assert np.abs(rgb - ybr).max() <= 6  # YCbCr round-trip rounding only
    assert np.abs(rgb - jpeg).mean() < 2  # lossy JPEG in YBR_FULL_422


def test_palette_colour_becomes_rgb(dicom_corpus):
    image = read_dicom(dicom_corpus / "pydicom_data" / "OBXXXX1A.dcm")
    assert image.shape[0] == 3 and image.max() > 255  # 16-bit palette entries


def test_multiframe_frames_and_single_frame_guard(dicom_corpus):
    path = dicom_corpus / "pydicom_data" / "emri_small.dcm"
    assert decode_dicom(path).shape == (10, 1, 64, 64)
    with pytest.raises(InputError, match="multi-frame DICOM \\(10 frames\\)"):
        read_dicom(path)


def test_monochrome1_compressed_inverted(dicom_corpus):
    path = dicom_corpus / "pydicom_data" / "RG1_J2KI.dcm"
    raw = decode_dicom(path)[0, 0]
    import pydicom

    stored = pydicom.dcmread(path).pixel_array.astype(np.float32)
    # After inversion the stored maximum maps onto the minimum and vice versa.
    assert raw[stored == stored.max()].max() == raw.min()


def test_window_from_file_and_override(dicom_corpus):
    path = dicom_corpus / "pydicom_test_files" / "CT_small.dcm"
    hu = read_dicom(path)
    windowed = read_dicom(path, window=(40, 400))
    np.testing.assert_allclose(windowed, apply_window(hu, 40, 400))
    assert windowed.min() >= 0 and windowed.max() <= 1
    assert read_dicom(path, window="file").shape == hu.shape


def test_apply_window_hand_computed():
    values = np.array([-1000.0, 39.5, 40.0, 1000.0])
    out = apply_window(values, center=40, width=401)
    # ((x - 39.5) / 400) + 0.5, clipped
    np.testing.assert_allclose(out, [0.0, 0.5, 0.50125, 1.0])


def test_file_without_meta_header_is_read(dicom_corpus):
    image = read_dicom(dicom_corpus / "pydicom_data" / "OT-PAL-8-face.dcm")
    assert image.shape[0] == 3


def test_multiframe_frames_as_samples(dicom_corpus, tmp_path):
    import pandas as pd

    from xaiseg.cli import main

    path = dicom_corpus / "pydicom_data" / "emri_small.dcm"
    rows = [f"f{i}\t{path}\t{'a' if i % 2 else 'b'}\tv{i // 2}\t{i}" for i in range(10)]
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample_id\timage\tlabel\tgroup\tframe\n" + "\n".join(rows) + "\n")
    args = [
        "preprocess",
        "--sheet",
        str(sheet),
        "--out",
        str(tmp_path / "run"),
        "--classes",
        "a",
        "b",
        "--roots",
        str(path.parent),  # the corpus lies outside the sheet's folder
    ]
    assert main([*args, "--image-size", "16"]) == 0
    kept = pd.read_csv(tmp_path / "run" / "sheet.tsv", sep="\t")
    assert len(kept) == 10
    expected = [read_dicom(path, frame=i) for i in (0, 9)]
    assert not np.array_equal(expected[0], expected[1])
    with pytest.raises(InputError, match="frame 10 out of range"):
        read_dicom(path, frame=10)
