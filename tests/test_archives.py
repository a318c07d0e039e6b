"""Dataset archives unpacked side by side before a layout reads the folder."""

from __future__ import annotations

import io
import tarfile

import pandas as pd
import pytest

from xaiseg.cli import main
from xaiseg.errors import InputError
from xaiseg.io.archives import extract_archives


def _tar(path, files: dict[str, bytes], mode: str = "w:gz") -> str:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_archives_are_unpacked_side_by_side(tmp_path):
    first = _tar(tmp_path / "a.tar.gz", {"set/normal/1.png": b"n"})
    second = _tar(tmp_path / "b.tar.xz", {"set/lesion/2.png": b"l"}, "w:xz")
    extract_archives([first, second], tmp_path / "raw")
    assert (tmp_path / "raw/set/normal/1.png").read_bytes() == b"n"
    assert (tmp_path / "raw/set/lesion/2.png").read_bytes() == b"l"


def test_a_member_outside_the_folder_or_a_broken_archive_is_refused(tmp_path):
    escaping = _tar(tmp_path / "evil.tar.gz", {"../outside.png": b"x"})
    with pytest.raises(InputError, match=r"evil\.tar\.gz: cannot extract"):
        extract_archives([escaping], tmp_path / "raw")
    assert not (tmp_path / "outside.png").exists()
    broken = tmp_path / "broken.tar.xz"
    broken.write_bytes(b"not an archive at all")
    with pytest.raises(InputError, match=r"broken\.tar\.xz: cannot extract"):
        extract_archives([broken], tmp_path / "raw")


def test_the_sheet_command_reads_the_layout_inside_the_unpacked_archive(tmp_path, capsys):
    files = {"set/normal/1.png": b"", "set/lesion/2.png": b"", "set/lesion/3.png": b""}
    archive = _tar(tmp_path / "data.tar.gz", files)
    raw, sheet = tmp_path / "raw", tmp_path / "sheet.tsv"
    args = ["sheet", str(raw / "set"), "--layout", "folders", "--out", str(sheet)]
    assert main([*args, "--extract", archive]) == 2
    assert "--extract needs --into" in capsys.readouterr().err
    assert main([*args, "--extract", archive, "--into", str(raw)]) == 0
    rows = pd.read_csv(sheet, sep="\t")
    assert sorted(rows["label"]) == ["lesion", "lesion", "normal"]
