"""Named layers of the factory's networks that explanations default to."""

from __future__ import annotations

from monai.networks import nets
from monai.networks.layers import SkipConnection
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.models.factory import ResNetUNet


def bottleneck(model: nn.Module) -> str:
    """The name of a segmenter's deepest layer (Seg-Grad-CAM's default): the innermost
    block of a MONAI UNet, ``down_4`` of a BasicUNet, the encoder's last stage of a
    ResNetUNet."""
    if isinstance(model, nets.BasicUNet):
        return "down_4"
    if isinstance(model, ResNetUNet):
        return "layer4"
    if isinstance(model, nets.UNet):
        # model.model = [down, SkipConnection([down, SkipConnection(...), up]), up]
        name, skip = "model.1", model.model[1]
        while isinstance(skip, SkipConnection):
            inner = skip.submodule
            if isinstance(inner, nn.Sequential) and isinstance(inner[1], SkipConnection):
                name, skip = f"{name}.submodule.1", inner[1]
            else:
                return f"{name}.submodule"
    raise XaisegError(
        f"no default layer for a {type(model).__name__}: name saliency.maps.<map>.target_layer"
    )
