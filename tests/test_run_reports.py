"""The HTML report of a real run (the demo, lgg40) in headless Chromium.

Reports of full runs are not built in CI (the runs take an hour on its machine), so
this test checks the reports named in ``XAISEG_REPORTS`` (space-separated paths), for
example after ``make run`` and the lgg40 run:

    XAISEG_REPORTS="results/demo/report.html results/lgg40/report.html" \\
        .venv/bin/python -m pytest tests/test_run_reports.py -v

The end-to-end test checks the tiny run's report the same way in every CI run.
"""

import os
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, check_report

REPORTS = os.environ.get("XAISEG_REPORTS", "").split()


@pytest.mark.skipif(not REPORTS, reason="no XAISEG_REPORTS named (see the module docstring)")
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
@pytest.mark.parametrize("report", REPORTS or ["none"])
def test_a_run_report_opens_with_its_tables_and_figures(report):
    path = Path(report)
    assert path.is_file(), f"{report}: no such report (snakemake --report {report})"
    shown = check_report(path, path.with_suffix(".png"))
    assert shown["figures"] >= 7
