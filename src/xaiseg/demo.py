"""Synthetic demo dataset: anatomy-like slices with lesions and known masks.

Not a toy: textured tissue inside a skull-like rim, noise, a bright tubular
distractor that appears in negatives as often as in positives, and lesions of varied
size (small ones too), shape, contrast and count. Written as real DICOM, 8- and
16-bit PNG, and NIfTI files plus a sample sheet, so the readers are exercised too.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from scipy import ndimage

from xaiseg.io.nifti import write_nifti_2d
from xaiseg.io.sheet import write_sheet
from xaiseg.settings import DemoSettings

CLASSES = ("normal", "lesion")
FORMATS = ("dicom", "png8", "png16", "nifti")


def smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return field / (field.std() + 1e-8)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float32)


def anatomy(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Textured tissue in an ellipse with a bright rim; returns (image, tissue mask)."""
    yy, xx = _grid(size)
    cy, cx = size / 2 + rng.uniform(-3, 3, 2)
    ry, rx = size * rng.uniform(0.40, 0.46), size * rng.uniform(0.34, 0.42)
    radius = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    radius = radius + 0.03 * smooth_noise(rng, size, size / 10)
    tissue = radius < 0.9
    rim = (radius >= 0.9) & (radius < 1.0)
    texture = 0.35 + 0.06 * smooth_noise(rng, size, size / 16) + 0.04 * smooth_noise(rng, size, 2)
    image = np.where(tissue, texture, 0.0) + np.where(rim, 0.75, 0.0)
    return image.astype(np.float32), tissue


def blob(rng: np.random.Generator, size: int, center, radius: float) -> np.ndarray:
    """An irregular, randomly elongated blob as a bool mask."""
    yy, xx = _grid(size)
    angle = rng.uniform(0, np.pi)
    elong = rng.uniform(0.6, 1.0)
    dy, dx = yy - center[0], xx - center[1]
    u = dy * np.cos(angle) + dx * np.sin(angle)
    v = -dy * np.sin(angle) + dx * np.cos(angle)
    r = np.sqrt((u / radius) ** 2 + (v / (radius * elong)) ** 2)
    return (r + 0.15 * smooth_noise(rng, size, max(radius / 2, 1.0))) < 1.0


def distractor(rng: np.random.Generator, size: int, tissue: np.ndarray) -> np.ndarray:
    """A bright curved tube (vessel-like): as bright as a lesion, but not one."""
    yy, xx = _grid(size)
    a, b = rng.uniform(0.2, 0.8, 2) * size
    curve = (
        a
        + rng.uniform(-0.3, 0.3) * (xx - size / 2)
        + rng.uniform(3, 8) * np.sin(xx / size * rng.uniform(2, 5))
    )
    tube = np.abs(yy - curve) < rng.uniform(1.0, 2.2)
    span = (xx > b - size * 0.25) & (xx < b + size * 0.25)
    return tube & span & tissue


def make_sample(
    rng: np.random.Generator, size: int, positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32, roughly [0, 1]) and its ground-truth lesion mask."""
    image, tissue = anatomy(rng, size)
    mask = np.zeros((size, size), bool)
    if rng.random() < 0.7:
        image = np.where(distractor(rng, size, tissue), image + rng.uniform(0.3, 0.5), image)
    if positive:
        inner = ndimage.binary_erosion(tissue, iterations=int(size * 0.12))
        candidates = np.argwhere(inner)
        for _ in range(2 if rng.random() < 0.25 else 1):
            center = candidates[rng.integers(len(candidates))]
            radius = size * (
                rng.uniform(0.025, 0.05) if rng.random() < 0.35 else rng.uniform(0.05, 0.11)
            )
            lesion = blob(rng, size, center, radius) & tissue
            contrast = rng.uniform(0.2, 0.5)
            shading = ndimage.gaussian_filter(lesion.astype(np.float32), 1.0)
            image = image + contrast * shading
            mask |= lesion
    image = image + rng.normal(0, 0.03, image.shape)
    return image.astype(np.float32), mask


def _write_dicom(path: Path, image: np.ndarray, patient: str, index: int) -> None:
    slope, intercept = 0.5, -200.0
    stored = np.clip(np.round((image * 2000.0 - intercept) / slope), 0, 65535).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientName = f"DEMO^{patient}"  # fake identity; never copied into an artifact
    ds.PatientID = f"FAKE-{patient}"
    ds.PatientBirthDate = "19450704"
    ds.AccessionNumber = f"ACCFAKE{index:05d}"
    ds.InstitutionName = "Nowhere Fake General Hospital"
    ds.StudyDate = datetime.date(2020, 1, 1).strftime("%Y%m%d")
    ds.InstanceNumber = index
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.WindowCenter, ds.WindowWidth = 400, 1200
    ds.PixelSpacing = [1.0, 1.0]
    # Where the slice lies, as scanners write it: what a DICOM SEG of it refers to.
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["xaiseg demo study", patient])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["xaiseg demo series", patient, str(index)])
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=["xaiseg demo frame", patient])
    ds.StudyID, ds.SeriesNumber, ds.StudyTime = "1", 1, "000000"
    ds.ReferringPhysicianName, ds.PatientSex = "", "O"
    ds.ImagePositionPatient = [0.0, 0.0, float(index)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.SliceThickness = 1.0
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def _write_image(path_stem: Path, fmt: str, image: np.ndarray, patient: str, index: int) -> Path:
    unit = np.clip(image / 1.4, 0, 1)
    if fmt == "dicom":
        path = path_stem.with_suffix(".dcm")
        _write_dicom(path, image, patient, index)
    elif fmt == "png8":
        path = path_stem.with_suffix(".png")
        Image.fromarray(np.round(unit * 255).astype(np.uint8)).save(path)
    elif fmt == "png16":
        path = path_stem.with_suffix(".png")
        Image.fromarray(np.round(unit * 65535).astype(np.uint16)).save(path)
    else:
        path = path_stem.with_name(path_stem.name + ".nii.gz")
        write_nifti_2d(path, image)
    return path


def make_volume(
    rng: np.random.Generator, size: int, positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A small 3D volume: textured ellipsoid, bright shell, 3D lesion blobs."""
    grid = np.mgrid[0:size, 0:size, 0:size].astype(np.float32)
    centre = size / 2 + rng.uniform(-1, 1, 3)
    radii = size * rng.uniform(0.36, 0.44, 3)
    radius = np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)))
    tissue = radius < 0.9
    texture = ndimage.gaussian_filter(rng.standard_normal((size,) * 3), 2.0)
    image = np.where(tissue, 0.35 + 0.15 * texture / (texture.std() + 1e-8), 0.0)
    image = image + np.where((radius >= 0.9) & (radius < 1.0), 0.75, 0.0)
    mask = np.zeros((size,) * 3, bool)
    if positive:
        inner = np.argwhere(ndimage.binary_erosion(tissue, iterations=max(2, size // 8)))
        centre = inner[rng.integers(len(inner))]
        r = size * rng.uniform(0.06, 0.12)
        distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
        mask = (distance < r) & tissue
        image = image + rng.uniform(0.25, 0.5) * ndimage.gaussian_filter(mask.astype(np.float32), 1)
    image = image + rng.normal(0, 0.03, image.shape)
    return image.astype(np.float32), mask


def generate_demo(out_dir: str | Path, spec: DemoSettings) -> pd.DataFrame:
    """Write the demo images, masks and ``sheet.tsv`` into ``out_dir``.

    ``spec.spatial_dims == 3`` writes NIfTI volumes (and NIfTI masks) instead of slices.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    n_pos = round(spec.n_images * spec.positive_fraction)
    labels = rng.permutation([1] * n_pos + [0] * (spec.n_images - n_pos)).tolist()
    rows = []
    for i, positive in enumerate(labels):
        sample_id = f"demo{i:04d}"
        patient = f"P{i // spec.images_per_patient:03d}"
        if spec.spatial_dims == 3:
            image, mask = make_volume(rng, spec.size, bool(positive))
            image_path = out / "images" / f"{sample_id}.nii.gz"
            mask_path = out / "masks" / f"{sample_id}.nii.gz"
            nib.save(nib.Nifti1Image(image, np.eye(4)), str(image_path))
            nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), str(mask_path))
        else:
            image, mask = make_sample(rng, spec.size, bool(positive))
            fmt = FORMATS[i % len(FORMATS)]
            image_path = _write_image(out / "images" / sample_id, fmt, image, patient, i)
            mask_path = out / "masks" / f"{sample_id}.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
        rows.append(
            {
                "sample_id": sample_id,
                "image": str(image_path.relative_to(out)),
                "label": CLASSES[int(positive)],
                "mask": str(mask_path.relative_to(out)),
                "group": patient,
                "split": "",
            }
        )
    sheet = pd.DataFrame(rows)
    write_sheet(out / "sheet.tsv", sheet)
    return sheet


IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName")


def read_fake_identities(paths: list[Path]) -> set[str]:
    """The fake patient-identifying values stored in demo DICOMs (for leak tests)."""
    values = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        values |= {str(ds.get(tag)) for tag in IDENTIFYING if ds.get(tag)}
    return values
