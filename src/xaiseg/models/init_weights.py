"""Start a network from weights the user already has: a local safetensors file (for
example ImageNet or RadImageNet weights converted by the user, or another xaiseg
model). Nothing is downloaded.

Tensors are matched by name and shape. A first convolution whose input-channel count
differs is adapted as timm's ``adapt_input_conv`` does: summed to one channel, or
repeated and rescaled to more, so a grey image meets an RGB filter with the same
response. Everything else that does not fit keeps its fresh initialisation, and the
report says so tensor by tensor.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.integrity import verified_bytes
from xaiseg.provenance import file_sha256, write_json


def adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A convolution weight (out, in, *kernel) for ``channels`` input channels."""
    source = weight.shape[1]
    if source == channels:
        return weight
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(channels / source)
    tiled = weight.repeat(1, repeats, *([1] * (weight.ndim - 2)))[:, :channels]
    return tiled * (source / channels)


def load_matching(model: nn.Module, path: str | Path) -> dict:
    """Copy the tensors of ``path`` that fit ``model`` into it; returns the report:
    loaded, adapted (first convolution's input channels), skipped (in the file, no
    fit), new (in the model, not in the file), and the file's sha256."""
    path = Path(path)
    if not path.is_file():
        raise XaisegError(f"init_weights {path}: file not found")
    try:
        weights = load(verified_bytes(path))
    except (SafetensorError, OSError) as err:
        raise XaisegError(f"init_weights {path}: not a safetensors file ({err})") from err
    state = model.state_dict()
    weights, member = _first_member(weights, state)
    first_weight = next((n for n, t in state.items() if n.endswith("weight") and t.ndim >= 3), None)
    report: dict = {"file": str(path), "sha256": file_sha256(path)}
    if member is not None:
        report["member"] = member
    report.update(loaded=[], adapted=[], skipped=[], new=[])
    update = {}
    for name, tensor in weights.items():
        target = state.get(name)
        if target is None:
            report["skipped"].append(f"{name}: not in the model")
        elif target.shape == tensor.shape:
            update[name] = tensor
            report["loaded"].append(name)
        elif name == first_weight and _same_but_inputs(target, tensor):
            update[name] = adapt_input_channels(tensor, target.shape[1])
            report["adapted"].append(f"{name}: {tensor.shape[1]} -> {target.shape[1]} channels")
        else:
            shapes = f"{tuple(tensor.shape)} in the file, {tuple(target.shape)} in the model"
            report["skipped"].append(f"{name}: {shapes}")
    report["new"] = [name for name in state if name not in update]
    if not update:
        raise XaisegError(f"init_weights {path}: no tensor fits the network by name and shape")
    model.load_state_dict({**state, **{k: v.to(state[k].dtype) for k, v in update.items()}})
    return report


def _first_member(
    weights: dict[str, torch.Tensor], state: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], int | None]:
    """An ensemble's file (``members.<i>.<name>``) read as its first member's, when the
    model is one network: a U-Net starts from one classifier, not from a mean of
    networks trained apart (their weights do not average)."""
    prefix = "members.0."
    if any(name in state for name in weights) or not any(n.startswith(prefix) for n in weights):
        return weights, None
    return {n[len(prefix) :]: t for n, t in weights.items() if n.startswith(prefix)}, 0


def _same_but_inputs(target: torch.Tensor, tensor: torch.Tensor) -> bool:
    return (
        tensor.ndim == target.ndim
        and tensor.shape[0] == target.shape[0]
        and tensor.shape[2:] == target.shape[2:]
    )


def initialise(model: nn.Module, path: str | None, out_dir: Path) -> list[Path]:
    """Load ``path`` into ``model`` when one is given, write the report beside the
    model (``init_weights.json``) and return the files to record as inputs."""
    if not path:
        return []
    report = load_matching(model, path)
    write_json(Path(out_dir) / "init_weights.json", report)
    print(
        f"init_weights {path}: {len(report['loaded'])} loaded, {len(report['adapted'])} adapted,"
        f" {len(report['skipped'])} skipped, {len(report['new'])} newly initialised",
        flush=True,
    )
    return [Path(path)]


def average_with_start(model: nn.Module, start: dict[str, torch.Tensor], share: float) -> None:
    """Each floating-point tensor of ``model`` (weights and batch-norm statistics) made
    ``share`` of ``start``'s and the rest its own, in place (WiSE-FT's weight-space
    average); counters such as ``num_batches_tracked`` stay the model's."""
    if not 0 <= share <= 1:
        raise XaisegError(f"average_with_start: share in [0, 1], got {share}")
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if tensor.is_floating_point():
                tensor.lerp_(start[name].to(tensor.device, tensor.dtype), share)
