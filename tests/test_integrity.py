"""A corrupt artifact is found (named with the stage that makes it), set aside to be
made again, and never read: checked against the record its stage wrote."""

import os

import pytest

from xaiseg.cli import main
from xaiseg.data.shards import ShardStore
from xaiseg.integrity import CorruptArtifact, check_tree, repair_at_start


def _shard(data_dir):
    return data_dir / "shard-00000.safetensors"


def test_a_fresh_run_verifies_clean(data_dir, capsys):
    assert main(["verify", str(data_dir.parent)]) == 0
    assert "verify: 1 artifacts, 0 corrupt file(s)" in capsys.readouterr().out


def test_a_truncated_shard_is_named_and_set_aside(data_dir, capsys):
    run = data_dir.parent
    original = _shard(data_dir).read_bytes()
    os.truncate(_shard(data_dir), 1000)
    assert main(["verify", str(run)]) == 2
    out = capsys.readouterr()
    assert f"corrupt: {_shard(data_dir)}: 1,000 bytes where its stage wrote" in out.out
    assert "(made by stage preprocess)" in out.out and "--repair" in out.err
    with pytest.raises(CorruptArtifact, match=r"shard-00000\.safetensors: corrupt artifact"):
        ShardStore(data_dir).load(["image"])
    lines = repair_at_start(run)
    assert lines[-1].startswith(f"xaiseg: set {data_dir} aside to {run}/corrupt/")
    assert not data_dir.exists()
    (kept,) = (run / "corrupt").glob("*/data/shard-00000.safetensors")
    assert len(kept.read_bytes()) == 1000 and len(original) > 1000  # nothing deleted
    assert check_tree(run) == (0, [])  # the set-aside copy is not an artifact


def test_a_changed_byte_with_its_time_kept_is_found_by_the_full_check(data_dir):
    shard = _shard(data_dir)
    stat = shard.stat()
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert check_tree(data_dir.parent, quick=True)[1] == []  # size and time as written
    (finding,) = check_tree(data_dir.parent)[1]
    assert finding.file == shard and "SHA-256 differs" in finding.reason
    with pytest.raises(CorruptArtifact, match=f"xaiseg verify {data_dir} --repair"):
        ShardStore(data_dir).load(["image"])


def test_a_truncated_model_is_refused_by_name_not_by_traceback(data_dir, tmp_path, capsys):
    from xaiseg.models import load_network

    out = tmp_path / "classifier"
    args = ["train-classifier", "--data", str(data_dir), "--out", str(out)]
    assert main([*args, "--network", "resnet10", "--epochs", "1", "--batch-size", "2"]) == 0
    os.truncate(out / "model.safetensors", 1000)
    with pytest.raises(CorruptArtifact, match="its stage classifier wrote"):
        load_network(out)
    saliency = ["saliency", "--data", str(data_dir), "--model", str(out)]
    saliency += ["--out", str(tmp_path / "maps"), "--map", "g", "--method", "gradcam"]
    capsys.readouterr()
    assert main(saliency) == 2
    assert "model.safetensors: corrupt artifact" in capsys.readouterr().err
