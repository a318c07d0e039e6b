from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def png_dataset(tmp_path: Path):
    """Six tiny PNG images with masks, written as a valid sheet; returns (sheet, folder)."""
    rows = ["sample_id\timage\tlabel\tmask\tgroup"]
    for i in range(6):
        image = np.full((16, 16), 40, np.uint8)
        mask = np.zeros((16, 16), np.uint8)
        if i % 2:
            image[4:8, 4:8] = 200
            mask[4:8, 4:8] = 255
        Image.fromarray(image).save(tmp_path / f"img{i}.png")
        Image.fromarray(mask).save(tmp_path / f"img{i}_mask.png")
        label = "lesion" if i % 2 else "normal"
        rows.append(f"s{i}\timg{i}.png\t{label}\timg{i}_mask.png\tp{i // 2}")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet, tmp_path


@pytest.fixture
def data_dir(png_dataset, tmp_path: Path) -> Path:
    """``png_dataset`` preprocessed at 16 pixels (2 / 2 / 2 images train / val / test)."""
    from xaiseg.cli import main

    sheet, _ = png_dataset
    args = ["preprocess", "--sheet", str(sheet), "--out", str(tmp_path / "run")]
    args += ["--classes", "normal", "lesion", "--image-size", "16"]
    assert main([*args, "--val-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    return tmp_path / "run" / "data"


def extracted(archive: str) -> Path:
    """Extract a shared archive once into .cache/ (never committed); skip if absent."""
    import tarfile

    source = SHARED_DATA / archive
    if not source.is_file():
        pytest.skip(f"{source} not available")
    target = ROOT / ".cache" / "shared"
    marker = target / f".{archive}.done"
    if not marker.exists():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(source) as tar:
            tar.extractall(target, filter="data")
        marker.touch()
    return target


@pytest.fixture(scope="session")
def dicom_corpus() -> Path:
    return extracted("dicom_corpus.tar.xz") / "dicom_corpus"


@pytest.fixture(scope="session")
def lgg_subset() -> Path:
    return extracted("lgg_mri_subset.tar.xz") / "lgg_mri_subset"
