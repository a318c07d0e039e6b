"""`make run` ends with the report of the configured run, under its own name."""

import shutil
import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
@pytest.mark.parametrize(
    ("text", "run"), [("run: demo\nseed: 0\n", "demo"), ("data: {}\nrun: lgg40  # 40\n", "lgg40")]
)
def test_make_run_writes_the_report_of_the_configured_run(tmp_path, text, run):
    config = tmp_path / "my.yaml"
    config.write_text(text)
    planned = subprocess.run(
        ["make", "-n", "run", f"CONFIG={config}", "STAMP=/dev/null"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"--report results/{run}/report.html" in planned
