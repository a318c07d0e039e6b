"""What every saliency method shares: typed options, layer lookup, targets, batching,
and maps at the input's resolution in any number of spatial dimensions.

A method returns raw, signed maps (N, 1, *spatial). Normalisation is deliberately not
done here (``normalize.py``): mask recipes choose how to read a map.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xaiseg.data.artifacts import peak_scaled
from xaiseg.errors import XaisegError
from xaiseg.saliency.targets import Target, TargetedModel, as_target
from xaiseg.settings import NoOptions, from_mapping


class SaliencyMethod(ABC):
    """Subclasses set ``Options`` (a dataclass) and implement ``attribute``."""

    needs_layer = False
    Options: type = NoOptions

    def __init__(self, model: nn.Module, target_layer: str | None = None, **options) -> None:
        self.model = model.eval()
        self.options = from_mapping(self.Options, options, type(self).__name__, "option")
        self.layer_name = target_layer
        self.layer = find_layer(model, target_layer) if self.needs_layer else None

    @abstractmethod
    def attribute(
        self, forward: nn.Module, images: torch.Tensor, extra: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        """Raw attribution of ``forward``'s single output for one batch, (N, 1, *any)."""

    def __call__(
        self,
        images: torch.Tensor,
        target: Target | int,
        extra: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        forward = TargetedModel(self.model, as_target(target))
        maps = self.attribute(forward, images.detach(), tuple(extra)).detach()
        return resize_maps(maps, tuple(images.shape[2:]))


def mirrored(
    explain: Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor],
    images: torch.Tensor,
    extra: Sequence[torch.Tensor],
    axes: Sequence[int],
) -> torch.Tensor:
    """The mean of ``explain``'s maps over every subset of the spatial ``axes`` mirrored,
    each map mirrored back: test-time mirroring (nnU-Net's mirror_axes) for maps."""
    subsets = itertools.chain.from_iterable(
        itertools.combinations(axes, k) for k in range(len(axes) + 1)
    )
    total = None
    for subset in subsets:
        dims = [2 + axis for axis in subset]

        def flip(tensor: torch.Tensor, dims: list[int] = dims) -> torch.Tensor:
            return tensor.flip(dims) if dims else tensor

        maps = flip(explain(flip(images), [flip(e) for e in extra]))
        total = maps if total is None else total + maps
    return total / 2 ** len(axes)


def multiscale(
    explain: Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor],
    images: torch.Tensor,
    extra: Sequence[torch.Tensor],
    scales: Sequence[float],
) -> torch.Tensor:
    """The mean of ``explain``'s maps of the images resized by each factor in ``scales``,
    each map resized back and scaled to a largest magnitude of 1 per image (a map's values
    depend on its size: relevance spreads over more pixels at a larger scale); no scales:
    the maps as they are. Multi-scale maps, as weakly supervised segmentation infers CAMs."""
    if not scales:
        return explain(images, list(extra))
    size = tuple(images.shape[2:])
    total = None
    for factor in scales:
        scaled = tuple(max(1, round(n * factor)) for n in size)
        maps = explain(
            resize_maps(images, scaled),
            [F.interpolate(e, size=scaled, mode="nearest") for e in extra],
        )
        maps = peak_scaled(resize_maps(maps, size))
        total = maps if total is None else total + maps
    return total / len(scales)


def resize_maps(maps: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize (N, C, *spatial) maps or images to ``size``: bilinear in 2D, trilinear in 3D."""
    if tuple(maps.shape[2:]) == size:
        return maps
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
    return F.interpolate(maps, size=size, mode=mode, align_corners=False)


def find_layer(model: nn.Module, name: str | None) -> nn.Module:
    layers = dict(model.named_modules())
    if not name or name not in layers:
        candidates = [n for n, m in layers.items() if n and len(list(m.children())) > 0][:12]
        raise XaisegError(f"target layer {name!r} not in the model; e.g. {candidates}")
    return layers[name]


def layer_activation_and_gradient(
    forward: nn.Module, layer: nn.Module, images: torch.Tensor, extra: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's activation and the gradient of the summed scores with respect to it."""
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        output.retain_grad()
        captured["activation"] = output

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            score = forward(images, *extra).sum()
            score.backward()
    finally:
        handle.remove()
    activation = captured["activation"]
    return activation.detach(), activation.grad.detach()


def spatial_dims(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, tensor.ndim))
