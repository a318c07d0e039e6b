"""The tiny workflow on a GPU: every network stage runs on CUDA, in bf16 autocast, and
its artifacts load back on the CPU. Skipped where torch sees no CUDA device (CI); run
on a GPU machine with ``pytest tests/e2e/test_workflow_cuda.py``."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

from tests.e2e.test_workflow import copy_project, snakemake, write_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

# Stages that run a network, by the folder their provenance sits in.
NETWORK_STAGES = ("pretrain", "classifier", "counterfactual", "saliency", "segmenter")


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("cuda")
    copy_project(work)
    config = write_config(
        work, "cuda.yaml", device="cuda", precision="bf16",
        classifier__init_weights="pretrain", pretrain__epochs=2, pretrain__batch_size=8,
    )  # fmt: skip
    # Every stage that can run does: one run names every stage that fails on CUDA. A GPU
    # machine has cores to spare: XAISEG_TEST_CORES runs jobs side by side, one GPU each.
    cores = os.environ.get("XAISEG_TEST_CORES", "2")
    snakemake(
        work,
        "--configfile",
        config,
        "--keep-going",
        "--cores",
        cores,
        "--resources",
        f"gpu={cores}",
    )
    return work / "results" / "tiny"


def test_every_network_stage_ran_on_the_gpu(cuda_run):
    provenances = [p for s in NETWORK_STAGES for p in (cuda_run / s).rglob("provenance.json")]
    assert {p.relative_to(cuda_run).parts[0] for p in provenances} == set(NETWORK_STAGES)
    provenances += list((cuda_run / "eval" / "faithfulness").rglob("provenance.json"))
    name = torch.cuda.get_device_name(0)
    for path in provenances:
        assert json.loads(path.read_text())["device"] == f"cuda:{name}", path


def test_gpu_artifacts_are_finite_and_load_on_the_cpu(cuda_run):
    from safetensors.torch import load_file

    weights = sorted(cuda_run.glob("*/**/model.safetensors"))
    assert weights
    for path in weights:
        for name, tensor in load_file(path, device="cpu").items():
            assert torch.isfinite(tensor.float()).all(), (path, name)
    summary = pd.read_csv(cuda_run / "summary.csv")
    assert summary["dice"].between(0, 1).all()
