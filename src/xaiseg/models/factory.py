"""Build MONAI classifiers and segmenters from a name and keyword options.

Every builder takes ``spatial_dims`` (2 for slices, 3 for volumes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monai.networks import nets
from torch import nn

from xaiseg.errors import XaisegError


def _resnet(depth: int) -> Callable[..., nn.Module]:
    def build(
        in_channels: int, num_classes: int, spatial_dims: int = 2, **options: Any
    ) -> nn.Module:
        # A stride-2 stem without max-pool keeps layer1..layer4 at strides 2..16,
        # so CAM target layers are fine enough for small lesions.
        options = {"conv1_t_stride": 2, "no_max_pool": True, **options}
        factory = getattr(nets, f"resnet{depth}")
        return factory(
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            num_classes=num_classes,
            **options,
        )

    return build


def _densenet121(
    in_channels: int, num_classes: int, spatial_dims: int = 2, **options: Any
) -> nn.Module:
    return nets.DenseNet121(
        spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes, **options
    )


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "resnet10": _resnet(10),
    "resnet18": _resnet(18),
    "resnet34": _resnet(34),
    "densenet121": _densenet121,
}


def _unet(in_channels: int, num_classes: int, spatial_dims: int = 2, **options: Any) -> nn.Module:
    options = {"channels": (16, 32, 64, 128), "strides": (2, 2, 2), "num_res_units": 2, **options}
    return nets.UNet(
        spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes, **options
    )


def _basic_unet(
    in_channels: int, num_classes: int, spatial_dims: int = 2, **options: Any
) -> nn.Module:
    return nets.BasicUNet(
        spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes, **options
    )


SEGMENTERS: dict[str, Callable[..., nn.Module]] = {"unet": _unet, "basic_unet": _basic_unet}


def _build(
    registry: dict, kind: str, name: str, in_channels: int, num_classes: int, options: dict
) -> nn.Module:
    if name not in registry:
        raise XaisegError(f"unknown {kind} {name!r}; choose one of {sorted(registry)}")
    try:
        return registry[name](in_channels, num_classes, **options)
    except TypeError as err:  # a misspelt network option
        raise XaisegError(f"{kind} {name!r}: bad network_options {options} ({err})") from err


def build_classifier(name: str, in_channels: int, num_classes: int, **options: Any) -> nn.Module:
    return _build(CLASSIFIERS, "classifier", name, in_channels, num_classes, options)


def build_segmenter(name: str, in_channels: int, num_classes: int = 2, **options: Any) -> nn.Module:
    return _build(SEGMENTERS, "segmenter", name, in_channels, num_classes, options)
