"""Data-parallel training launched by torchrun, on the CPU with the gloo backend: two
processes learn what one process learns (their losses within float tolerance), and
only the first writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from xaiseg.cli import main

pytestmark = pytest.mark.slow

# InstanceNorm (MONAI's U-Net default) makes each image's gradient independent of the
# others in its batch: the shares of a batch add up to the whole batch exactly.
SEGMENTER = {
    "epochs": 3,
    "batch_size": 8,
    "learning_rate": 0.003,
    "seed": 2,
    "network_options": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1},
}


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    assert main(["demo-data", "--out", str(root / "demo"), "--n-images", "40", "--size", "32"]) == 0
    args = ["preprocess", "--sheet", str(root / "demo" / "sheet.tsv"), "--out", str(root / "run")]
    args += ["--classes", "normal", "lesion", "--image-size", "32"]
    assert main([*args, "--val-fraction", "0.2", "--test-fraction", "0.2"]) == 0
    return root / "run" / "data"


def _train(data: Path, out: Path, processes: int) -> subprocess.CompletedProcess:
    command = ["-m", "xaiseg", "train-segmenter", "--data", str(data), "--out", str(out)]
    command += ["--settings", json.dumps({**SEGMENTER, "device": "cpu"}), "--threads", "1"]
    if processes > 1:
        launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        command = [*launch, *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, *command], env=env, capture_output=True, text=True, timeout=600
    )


def test_two_processes_learn_what_one_learns(demo_data, tmp_path):
    single = _train(demo_data, tmp_path / "one", 1)
    assert single.returncode == 0, single.stderr[-3000:]
    double = _train(demo_data, tmp_path / "two", 2)
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    losses = [[h["loss"] for h in m["history"]] for m in (one, two)]
    assert len(losses[0]) == 3
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)
    scores = [[h["val_score"] for h in m["history"]] for m in (one, two)]
    # Val Dice thresholds the output at 0.5: float-level weight changes move a few pixels.
    torch.testing.assert_close(scores[1], scores[0], rtol=0, atol=0.01)
    provenance = json.loads((tmp_path / "two" / "provenance.json").read_text())
    assert provenance["device"] == "cpu"
    # The first process alone reports.
    assert double.stdout.count("segmenter: best val Dice") == 1
