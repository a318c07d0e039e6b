"""A network as a file artifact: ``model.json`` (the spec) + ``model.safetensors``.

Classifiers and segmenters alike: whoever reads a model folder (saliency, explaining a
segmenter, prediction) rebuilds the network from the spec alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.integrity import verified_bytes
from xaiseg.models.ensemble import ENSEMBLE, Ensemble
from xaiseg.models.factory import build_classifier, build_reconstructor, build_segmenter
from xaiseg.provenance import atomic_path, write_json


@dataclass(frozen=True)
class NetworkSpec:
    kind: str  # "classifier", "segmenter" or "reconstructor" (counterfactual)
    network: str
    in_channels: int
    classes: tuple[str, ...]
    spatial_dims: int = 2
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def target_class(self) -> int:
        """The finding: the last class."""
        return len(self.classes) - 1


BUILDERS = {
    "classifier": build_classifier,
    "segmenter": build_segmenter,
    "reconstructor": build_reconstructor,
}


def build_network(spec: NetworkSpec) -> nn.Module:
    if spec.network == ENSEMBLE:  # options: {"members": [{"network", "options"}, ...]}
        members = spec.options.get("members") or []
        if not members:
            raise XaisegError("an ensemble's spec names no members (options.members)")
        return Ensemble(
            [
                build_network(replace(spec, network=m["network"], options=m.get("options", {})))
                for m in members
            ]
        )
    builder = BUILDERS.get(spec.kind)
    if builder is None:
        raise XaisegError(f"network kind {spec.kind!r}: expected one of {sorted(BUILDERS)}")
    return builder(
        spec.network,
        spec.in_channels,
        len(spec.classes),
        spatial_dims=spec.spatial_dims,
        **spec.options,
    )


def save_weights(model: nn.Module | dict[str, torch.Tensor], path: str | Path) -> None:
    """A network's tensors (or a state dict of some of them), written atomically."""
    state = model if isinstance(model, dict) else model.state_dict()
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Weights into ``model``; a model folder's file is checked against its record."""
    try:
        model.load_state_dict(load(verified_bytes(path)))
    except SafetensorError as err:
        raise XaisegError(f"{path}: cannot be read as safetensors weights ({err})") from err
    return model


def save_network(model: nn.Module, spec: NetworkSpec, folder: str | Path) -> None:
    folder = Path(folder)
    write_json(folder / "model.json", asdict(spec))
    save_weights(model, folder / "model.safetensors")


def load_network(folder: str | Path) -> tuple[nn.Module, NetworkSpec]:
    """The network of a model folder, in eval mode, on the CPU."""
    folder = Path(folder)
    values = json.loads(verified_bytes(folder / "model.json"))
    spec = NetworkSpec(**{**values, "classes": tuple(values["classes"])})
    model = load_weights(build_network(spec), folder / "model.safetensors")
    return model.eval(), spec
