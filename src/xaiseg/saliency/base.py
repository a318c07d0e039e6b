"""What every saliency method shares: layer lookup, batching, input-size maps.

A method returns raw, signed maps of shape (N, 1, H, W) at the input's resolution.
Normalisation is deliberately not done here (see ``normalize.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from captum.attr import LayerAttribution
from torch import nn

from xaiseg.errors import XaisegError


class SaliencyMethod(ABC):
    """Base class; subclasses implement ``_attribute`` for one batch."""

    needs_layer = False

    def __init__(self, model: nn.Module, target_layer: str | None = None, **options) -> None:
        self.model = model.eval()
        self.options = options
        self.layer = find_layer(model, target_layer) if self.needs_layer else None

    @abstractmethod
    def _attribute(self, images: torch.Tensor, target: int) -> torch.Tensor:
        """Raw attribution for a batch, (N, 1, h, w) at any resolution."""

    def __call__(self, images: torch.Tensor, target: int) -> torch.Tensor:
        maps = self._attribute(images.requires_grad_(False), target).detach()
        if maps.shape[-2:] != images.shape[-2:]:
            maps = LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), "bilinear")
        return maps


def find_layer(model: nn.Module, name: str | None) -> nn.Module:
    layers = dict(model.named_modules())
    if not name or name not in layers:
        candidates = [n for n, m in layers.items() if n and len(list(m.children())) > 0][:12]
        raise XaisegError(f"target layer {name!r} not in the model; e.g. {candidates}")
    return layers[name]
