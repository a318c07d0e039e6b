"""Write a source's masks and maps back in its own geometry and format.

A PNG, JPEG, BMP or TIFF gets an image of its own size (TIFF stays TIFF, the others
become PNG: a lossy mask is no mask); a NIfTI gets a NIfTI with its own affine, header
and orientation; a DICOM series gets a DICOM SEG that references its instances
(highdicom) and a NIfTI copy for viewers that read no DICOM. Every file is written
atomically.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

import xaiseg
from xaiseg.predict.sources import Decoded
from xaiseg.provenance import atomic_path


def target(out: Path, name: str, suffix: str) -> Path:
    path = out / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def raster_suffix(path: Path) -> str:
    return ".tif" if path.suffix.lower() in (".tif", ".tiff") else ".png"


def as_bytes(values: np.ndarray, kind: str) -> np.ndarray:
    """A mask as 0/255, a map in [0, 1] as 0..255: what any image viewer shows."""
    if kind == "mask":
        return (values > 0).astype(np.uint8) * 255
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


def write_raster(path: Path, plane: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        Image.fromarray(plane).save(tmp, format="TIFF" if path.suffix == ".tif" else "PNG")
    return path


def write_overlay(path: Path, image: np.ndarray, mask: np.ndarray) -> Path:
    """The image (its own grey or colour, stretched to 0..255) with the mask in red at
    40% and its outline in full red."""
    from scipy import ndimage

    picture = image if image.shape[0] == 3 else np.repeat(image[:1], 3, axis=0)
    low, high = np.percentile(picture, [0.5, 99.5])
    rgb = np.clip((picture - low) / max(high - low, 1e-6), 0, 1).transpose(1, 2, 0) * 255
    inside = mask > 0
    rgb[inside] = 0.6 * rgb[inside] + 0.4 * np.array([255.0, 0, 0])
    rgb[inside & ~ndimage.binary_erosion(inside)] = (255, 0, 0)
    return write_raster(path, rgb.astype(np.uint8))


# --- NIfTI --------------------------------------------------------------------------------


def back_to_file_orientation(canonical: np.ndarray, geometry: dict) -> np.ndarray:
    """A volume in closest-canonical (RAS+) order back to the file's own axis order."""
    start = nib.io_orientation(geometry["canonical_affine"])
    end = nib.io_orientation(geometry["affine"])
    return nib.orientations.apply_orientation(
        canonical, nib.orientations.ornt_transform(start, end)
    )


def write_nifti_like(path: Path, data: np.ndarray, geometry: dict) -> Path:
    """``data`` in the file's voxel order, saved with the file's own affine and header
    (qform and sform codes kept; scaling reset: the values are the mask's own)."""
    header = geometry["header"].copy()
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(1.0, 0.0)
    header.set_data_shape(data.shape)
    codes = (int(geometry["header"]["qform_code"]) or 1, int(geometry["header"]["sform_code"]) or 1)
    return write_nifti_affine(path, data, geometry["affine"], header, codes)


def write_nifti_affine(
    path: Path, data: np.ndarray, affine: np.ndarray, header=None, codes: tuple = (1, 1)
) -> Path:
    """``data`` with ``affine`` as both qform and sform (code 1, scanner, unless given)."""
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine, header)
    image.set_qform(affine, codes[0])
    image.set_sform(affine, codes[1])
    with atomic_path(path) as tmp:
        named = tmp.with_name(tmp.name + ".nii.gz")  # nibabel picks the format by suffix
        nib.save(image, str(named))
        named.rename(tmp)
    return path


def volume_of(planes: list[np.ndarray], axis: int) -> np.ndarray:
    """Per-slice planes (H, W) of a volume cut along ``axis``, back into the volume."""
    # take_slice gave each plane transposed (rows along the next axis): undo it.
    return np.stack([p.T for p in planes], axis=axis)


# --- DICOM SEG ----------------------------------------------------------------------------


def write_dicom_seg(path: Path, masks: np.ndarray, decoded: Decoded, label: str) -> Path:
    """A binary DICOM SEG of ``masks`` (frames, rows, columns: one per decoded frame,
    in the series' sorted order) referencing the source instances."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    sources = [_full_dataset(p) for p in decoded.geometry["paths"]]
    pixels = masks.astype(bool)  # a multi-frame instance: its frames in file order
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=hd.sr.CodedConcept(
            "49755003", "SCT", "Morphologically abnormal structure"
        ),
        segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="xaiseg",
            version=xaiseg.__version__,
            family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing"),
        ),
    )
    segmentation = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=generate_uid(),
        series_number=900,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="xaiseg",
        manufacturer_model_name="xaiseg predict",
        software_versions=xaiseg.__version__,
        device_serial_number="none",
        omit_empty_frames=False,
    )
    with atomic_path(path) as tmp:
        segmentation.save_as(tmp)
    return path


def _full_dataset(path: Path):
    import pydicom

    return pydicom.dcmread(path, force=True)
