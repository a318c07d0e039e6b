"""The run folder's lock: a live holder stops a second run, a dead one is taken over."""

import json
import socket
import subprocess

import pytest

from xaiseg.errors import XaisegError
from xaiseg.runlock import LOCK, drop_run_lock, take_run_lock


def test_a_live_holder_stops_a_second_run(tmp_path):
    other = subprocess.Popen(["sleep", "30"])
    try:
        take_run_lock(tmp_path, pid=other.pid)
        with pytest.raises(XaisegError, match=rf"another run \(process {other.pid} on "):
            take_run_lock(tmp_path)
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()


def test_a_dead_holders_lock_is_taken_over_and_dropped(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    take_run_lock(tmp_path, pid=gone.pid)
    take_run_lock(tmp_path)  # the holder is gone: stale
    drop_run_lock(tmp_path)
    assert not (tmp_path / LOCK).exists()


def test_a_holder_on_another_host_gets_the_remove_command(tmp_path):
    (tmp_path / LOCK).write_text(json.dumps({"host": socket.gethostname() + "-x", "pid": 1}))
    with pytest.raises(XaisegError, match=f"remove its lock: rm {tmp_path / LOCK}"):
        take_run_lock(tmp_path)
    drop_run_lock(tmp_path)  # not this process's: kept
    assert (tmp_path / LOCK).exists()
