"""Optional packages that MONAI imports when they are installed and xaiseg never uses.

MONAI's package import loads every submodule, and each tries its optional packages at
once (torchvision, transformers, onnxruntime, cupy, ...). Where they are installed (a
GPU image) that is seconds of every job's start: on the H200 machine 10 of the 18
seconds a stage took to import. xaiseg's own processes mark them absent before MONAI
loads; one already imported stays. ``XAISEG_OPTIONAL_IMPORTS=1`` turns this off.
"""

from __future__ import annotations

import os
import sys

UNUSED = (
    "torchvision", "torchaudio", "transformers", "huggingface_hub", "onnx", "onnxruntime",
    "tensorboard", "tensorboardX", "cupy", "cupyx", "cv2", "h5py", "lmdb", "zarr", "itk",
    "ignite", "mlflow", "clearml", "nni", "optuna", "lpips", "polygraphy", "tensorrt",
    "torch_tensorrt", "kvikio", "cucim", "openslide", "torchio", "segment_anything", "apex",
)  # fmt: skip


def skip_unused_optional_imports() -> list[str]:
    """Mark ``UNUSED`` packages absent (``import`` raises ModuleNotFoundError, MONAI's
    optional_import records them missing); the names marked."""
    if os.environ.get("XAISEG_OPTIONAL_IMPORTS") == "1":
        return []
    marked = [name for name in UNUSED if name not in sys.modules]
    for name in marked:
        sys.modules[name] = None  # type: ignore[assignment]
    return marked
