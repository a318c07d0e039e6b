import json

import pytest

from xaiseg.provenance import atomic_path, file_sha256, write_provenance


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_old_file_until_done(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old"


def test_provenance_records_inputs_params_versions(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("abc")
    path = write_provenance(tmp_path / "art", stage="x", params={"k": 1}, inputs=[src], seed=3)
    record = json.loads(path.read_text())
    # Outside the working directory a file is keyed by its name: folders may identify.
    assert record["inputs"] == {"in.txt": file_sha256(src)}
    assert record["params"] == {"k": 1} and record["seed"] == 3
    assert "torch" in record["versions"] and "monai" in record["versions"]
    assert record["outputs"] == {}  # the folder held nothing yet


def test_provenance_lists_what_its_stage_wrote(tmp_path):
    art = tmp_path / "art"
    (art / "sub").mkdir(parents=True)
    (art / "checkpoint").mkdir()
    (art / "own").mkdir()
    (art / "model.bin").write_bytes(b"abc")
    (art / "sub" / "shard").write_bytes(b"")
    (art / "checkpoint" / "last.safetensors").write_bytes(b"resume state")
    (art / "own" / "provenance.json").write_text("{}")  # another stage's artifact
    (art / ".hidden").write_text("x")
    record = json.loads(write_provenance(art, stage="x", params={}).read_text())
    assert sorted(record["outputs"]) == ["model.bin", "sub/shard"]
    assert record["outputs"]["model.bin"]["bytes"] == 3
    assert record["outputs"]["model.bin"]["sha256"] == file_sha256(art / "model.bin")


def test_seeding_sets_deterministic_mode_without_loading_the_compiler():
    """torch.use_deterministic_algorithms imports torch._inductor (about 1.3 s of CPU at
    every stage's start); seeding sets the same two flags without it."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from xaiseg.provenance import seed_everything\n"
        "seed_everything(3)\n"
        "print(torch.are_deterministic_algorithms_enabled(),"
        " torch.is_deterministic_algorithms_warn_only_enabled(),"
        " 'torch._inductor' in sys.modules, torch.initial_seed())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False", "3"]


def test_safetensors_artifacts_take_the_umask_mode(tmp_path):
    """safetensors replaces the file it is handed: the mode is set again before the
    rename, so a model is 0644 under umask 022, as every other artifact."""
    import os
    import stat

    import torch

    from xaiseg.models.spec import save_weights

    old = os.umask(0o022)
    try:
        save_weights({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
        (tmp_path / "m.json").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model.safetensors").stat().st_mode) == 0o644
