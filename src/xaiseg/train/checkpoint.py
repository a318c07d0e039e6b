"""Training state as safetensors plus JSON (never pickle)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.provenance import atomic_path, write_json

OWNER = "owner.json"


@contextmanager
def claimed(folder: Path) -> Iterator[None]:
    """Train into ``folder`` only when no other live process on this machine does.

    A job left running by a stopped workflow manager, and the rerun that manager
    starts next, would otherwise write one checkpoint folder together. A claim whose
    process is gone (killed, crashed) is taken over; it is dropped when training ends.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / OWNER
    host = socket.gethostname()
    owner = _read_owner(path)
    pid = owner.get("pid")
    if owner.get("host") == host and isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        raise XaisegError(
            f"{folder}: process {pid} on this machine is training into this folder; stop it"
            f" or wait (delete {path} if no such training runs)"
        )
    write_json(path, {"host": host, "pid": os.getpid()})
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def save_training_state(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]
) -> None:
    """Write ``last.safetensors`` then ``last.json``; the JSON marks a complete pair."""
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for idx, slots in opt["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).cpu().contiguous()
    with atomic_path(folder / "last.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json(folder / "last.json", {**meta, "param_groups": opt["param_groups"]})


def load_training_state(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, fingerprint: str
) -> dict[str, Any] | None:
    """Restore the last epoch of an interrupted run with the same fingerprint.

    A run that finished is never resumed: a rerun (forced, or after any change) trains
    again from the start, so it can never hand back a stale model.
    """
    meta_path = folder / "last.json"
    if not meta_path.is_file() or not (folder / "last.safetensors").is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("fingerprint") != fingerprint or meta.get("finished"):
        return None
    tensors = load_file(str(folder / "last.safetensors"))
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta
