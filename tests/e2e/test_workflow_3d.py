"""The tiny end-to-end run on 3D volumes: NIfTI in, every stage N-dimensional."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from safetensors import safe_open

from tests.e2e.test_workflow import copy_project, snakemake

pytestmark = pytest.mark.slow

TINY_3D = {
    "run": "tiny3d",
    "threads": 1,
    "data": {
        "source": "demo",
        "classes": ["normal", "lesion"],
        "demo": {"n_images": 24, "size": 24, "spatial_dims": 3, "images_per_patient": 2},
    },
    "preprocess": {
        "image_size": 16,
        "spatial_dims": 3,
        "val_fraction": 0.25,
        "test_fraction": 0.25,
        "shard_size": 10,
    },
    "classifier": {"network": "resnet10", "epochs": 1, "batch_size": 8},
    "saliency": {
        "batch_size": 8,
        "maps": {
            "gradcam": {"target_layer": "layer1"},
            "integrated_gradients": {"options": {"n_steps": 2}},
        },
    },
    "masks": {
        "gate_threshold": 0.0,
        "recipes": [
            {
                "name": "fused",
                "maps": ["gradcam", "integrated_gradients"],
                "smooth_sigma": 1.0,
                "rule": "otsu",
                "refine": [{"step": "fill_holes"}, {"step": "keep_largest"}],
            }
        ],
    },
    "segmenter": {
        "epochs": 1,
        "batch_size": 4,
        "network_options": {"channels": [4, 8], "strides": [2], "num_res_units": 1},
    },
    "finetune": {"pretrained": None},  # config.yaml's DoLL runs are 2D-demo sized
    "evaluate": {"n_figure": 2},
}


def test_3d_volumes_through_every_stage(tmp_path):
    import yaml

    copy_project(tmp_path)
    (tmp_path / "tiny3d.yaml").write_text(yaml.safe_dump(TINY_3D))
    snakemake(tmp_path, "--configfile", "tiny3d.yaml")
    run = tmp_path / "results" / "tiny3d"
    index = json.loads((run / "data" / "index.json").read_text())
    assert index["image_size"] == [16, 16, 16]
    artifacts = {
        "data": "image",
        "saliency/gradcam": "map",
        "masks/fused": "mask",
        "segmenter/supervised/predictions": "probability",
        "saliency/seg_gradcam": "map",  # config.yaml's maps of the supervised U-Net
        "saliency/seg_hirescam": "map",
    }
    for artifact, key in artifacts.items():
        shard = next((run / artifact).glob("shard-*.safetensors"))
        with safe_open(str(shard), "pt") as f:
            assert f.get_slice(key).get_shape()[-3:] == [16, 16, 16], artifact
    spec = json.loads((run / "segmenter" / "supervised" / "model.json").read_text())
    assert spec["spatial_dims"] == 3 and spec["kind"] == "segmenter"
    summary = pd.read_csv(run / "summary.csv")
    assert set(summary["model"]) == {"pseudo_mask", "segmenter", "supervised"}
    assert summary["dice_all"].between(0, 1).all()
    assert (run / "eval" / "figures" / "overlays.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "eval/explain/supervised/figure.png").read_bytes()[:4] == b"\x89PNG"
