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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.provenance import atomic_path, json_text, write_json
from xaiseg.runlock import alive, read_holder

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
    owner = read_holder(path)
    pid = owner.get("pid")
    if owner.get("host") == host and isinstance(pid, int) and pid != os.getpid() and alive(pid):
        raise XaisegError(
            f"{folder}: process {pid} on this machine is training into this folder; stop it"
            f" or wait (delete {path} if no such training runs)"
        )
    write_json(path, {"host": host, "pid": os.getpid()})
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


STATE_KEY = "training_state"  # the epoch's JSON, inside the weights' own header


def save_training_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    meta: dict[str, Any],
    average: nn.Module | None = None,
) -> None:
    """Write ``last.safetensors``: the weights, the optimiser's tensors, the weights'
    moving average if any and, in the same file's header, the epoch's JSON, so that a
    crash leaves either the whole new state or the whole old one. ``last.json`` is a
    copy to read, never read back."""
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if average is not None:
        for k, v in average.state_dict().items():
            tensors[f"average.{k}"] = v.detach().cpu().contiguous()
    for idx, slots in opt["state"].items():
        for name, value in slots.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).cpu().contiguous()
    state = {**meta, "param_groups": opt["param_groups"]}
    # Timings stay out of the header, so equal training writes equal bytes.
    timeless = {**state, "history": [_untimed(h) for h in state.get("history", [])]}
    with atomic_path(folder / "last.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={STATE_KEY: json_text(timeless)})
    write_json(folder / "last.json", state)


def _untimed(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "seconds"}


def _with_timings(meta: dict[str, Any], copy_path: Path) -> dict[str, Any]:
    """Each epoch's seconds from ``last.json`` where it describes the same epochs."""
    try:
        copy = json.loads(copy_path.read_text())
    except (OSError, ValueError):
        copy = {}
    same = [_untimed(h) for h in copy.get("history", [])] == meta.get("history")
    timed = copy["history"] if same else [{**h, "seconds": None} for h in meta["history"]]
    return {**meta, "history": timed}


def load_training_state(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    fingerprint: str,
    average: nn.Module | None = None,
) -> dict[str, Any] | None:
    """Restore the last epoch of an interrupted run with the same fingerprint.

    A run that finished is never resumed: a rerun (forced, or after any change) trains
    again from the start, so it can never hand back a stale model. A checkpoint that
    cannot be read (cut short, or from before the state lived in its header) is
    trained past from the start, never half-used.
    """
    path = folder / "last.safetensors"
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[STATE_KEY])
        tensors = load_file(str(path))
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        print(f"warning: {path} cannot be resumed from ({err}); training from the start")
        return None
    if meta.get("fingerprint") != fingerprint or meta.get("finished"):
        return None
    meta = _with_timings(meta, folder / "last.json")
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if average is not None:
        average.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("average.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta
