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
