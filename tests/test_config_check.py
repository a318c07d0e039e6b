"""Every config problem, schema and cross-field alike, in one run, each with its key,
and no Python or Snakemake stack frame shown."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xaiseg.config_check import checked_settings
from xaiseg.settings import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
BAD = {
    "run": "..",
    "threads": 0,
    "preprocess": {"percentiles": [99, 1], "image_sizee": 32},
    "masks": {"recipes": [{"name": "x", "maps": ["nosuchmap"], "rule": "otsu"}]},
}


def _demo_config(**changes):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


def test_every_problem_is_named_at_once():
    with pytest.raises(ConfigError) as caught:
        checked_settings(_demo_config(**BAD), SCHEMA)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "run",
        "threads",
        "preprocess",
        "preprocess.percentiles",
        "finetune.pretrained",
        "masks.recipes[x]",
    ]
    assert "image_sizee" in problems[2] and "known:" in problems[2]
    assert "'..' does not match" in problems[0]


def test_an_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match="'preproces' was unexpected"):
        checked_settings(_demo_config(preproces={"image_size": 3}), SCHEMA)


def test_the_demo_config_is_clean():
    assert checked_settings(_demo_config(), SCHEMA).run.run == "demo"


@pytest.mark.slow
def test_snakemake_lists_them_without_a_stack(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(BAD))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        [str(bin_dir / "snakemake"), "-n", "--cores", "1", "--configfile", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1
    output = run.stdout + run.stderr
    assert "xaiseg: invalid configuration:" in output
    for key in ("run:", "threads:", "preprocess.percentiles:", "masks.recipes[x]:"):
        assert f"\n  {key}" in output
    assert 'File "' not in output and "Traceback" not in output
    assert "$schema" not in output and "properties" not in output
