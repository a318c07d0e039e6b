"""One run at a time in a run folder: a lock that a second run reports and stops at
before its first job, so that it can never fail a job of the first and have its
manager delete that job's finished outputs.

The lock names its holder (host, process). A holder that is gone (kill -9, power
loss) leaves a stale lock, which the next run on the same host takes over by itself;
a holder on another host cannot be checked from here, so the message gives the one
command that removes the lock once the user knows that run has ended."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from xaiseg.errors import XaisegError

LOCK = ".xaiseg-run.lock"


def take_run_lock(run_folder: str | Path, pid: int | None = None) -> Path:
    """Hold ``run_folder`` for process ``pid`` (this one by default), or raise naming
    the live holder."""
    folder = Path(run_folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    me = {"host": socket.gethostname(), "pid": pid or os.getpid()}
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_holder(path)
            if holder == me:
                return path
            if holder.get("host") == me["host"] and not alive(holder.get("pid")):
                path.unlink(missing_ok=True)  # its run is gone: stale
                continue
            raise XaisegError(busy_message(folder, path, holder)) from None
        with os.fdopen(handle, "w") as out:
            json.dump(me, out)
        return path
    raise XaisegError(busy_message(folder, path, read_holder(path)))


def busy_message(folder: Path, path: Path, holder: dict[str, Any]) -> str:
    who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
    return (
        f"{folder}: another run ({who}) is working in this run folder; nothing was started."
        " Wait for it to end, or choose another 'run' name. If that run has ended"
        f" (its machine went down), remove its lock: rm {path}"
    )


def held_by_another(run_folder: str | Path) -> bool:
    """Whether a live process other than this one (or a host this one cannot check)
    holds the folder's lock."""
    holder = read_holder(Path(run_folder) / LOCK)
    if not holder:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    return holder.get("pid") != os.getpid() and alive(holder.get("pid"))


def drop_run_lock(run_folder: str | Path, pid: int | None = None) -> None:
    """Release the lock if this process holds it."""
    path = Path(run_folder) / LOCK
    holder = read_holder(path)
    if holder == {"host": socket.gethostname(), "pid": pid or os.getpid()}:
        path.unlink(missing_ok=True)


def read_holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
