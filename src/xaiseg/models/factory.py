"""Build MONAI classifiers and segmenters from a name and keyword options.

Every builder takes ``spatial_dims`` (2 for slices, 3 for volumes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.networks import nets
from monai.networks.layers import Conv, Norm, Pool
from monai.networks.nets.flexible_unet import SegmentationHead, UNetDecoder
from torch import nn

from xaiseg.errors import XaisegError


def _resnet(depth: int) -> Callable[..., nn.Module]:
    def build(
        in_channels: int, num_classes: int, spatial_dims: int = 2, **options: Any
    ) -> nn.Module:
        # A stride-2 stem without max-pool keeps layer1..layer4 at strides 2..16,
        # so CAM target layers are fine enough for small lesions.
        options = {"conv1_t_stride": 2, "no_max_pool": True, **options}
        dilate_stages = options.pop("dilate_stages", 0)
        factory = getattr(nets, f"resnet{depth}")
        network = factory(
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            num_classes=num_classes,
            **options,
        )
        return dilate_last_stages(network, dilate_stages)

    return build


def dilate_last_stages(network: nn.Module, stages: int) -> nn.Module:
    """The last ``stages`` ResNet stages keep their input's resolution: each stride 2
    becomes dilation, as DeepLab and weakly-supervised segmentation backbones do
    (Chen et al. 2017), so layer4's maps are twice as fine per stage. Same weights'
    shapes: a checkpoint of one loads into the other."""
    names = ["layer4", "layer3", "layer2"][:stages]
    if len(names) < stages:
        raise XaisegError(f"dilate_stages {stages}: a ResNet has at most 3 stages to dilate")
    for depth, name in enumerate(reversed(names), start=1):
        previous, dilation = 2 ** (depth - 1), 2**depth
        for index, block in enumerate(getattr(network, name)):
            for conv in (m for m in block.modules() if isinstance(m, nn.modules.conv._ConvNd)):
                conv.stride = (1,) * len(conv.stride)
                if conv.kernel_size[0] > 1:
                    # A stage's first convolution still sees the previous spacing.
                    d = previous if index == 0 and conv is block.conv1 else dilation
                    conv.dilation = conv.padding = (d,) * len(conv.dilation)
    return network


def _densenet121(
    in_channels: int, num_classes: int, spatial_dims: int = 2, **options: Any
) -> nn.Module:
    return nets.DenseNet121(
        spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes, **options
    )


def _vgg(
    in_channels: int,
    num_classes: int,
    spatial_dims: int = 2,
    channels: Sequence[int] = (32, 64, 128, 256),
    convs_per_stage: int = 2,
) -> nn.Module:
    """A plain VGG-style network (Simonyan & Zisserman 2015): stages of 3x3 convolution,
    batch norm and ReLU, max-pooled between stages (``stage<i>`` are CAM layers), global
    average pooling and one linear layer. No residual sums, so LRP explains it as is."""
    conv, norm = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    width = in_channels
    for i, out in enumerate(channels, start=1):
        stage: list[nn.Module] = []
        if i > 1:
            stage.append(Pool[Pool.MAX, spatial_dims](2))
        for _ in range(convs_per_stage):
            stage += [conv(width, out, 3, padding=1, bias=False), norm(out), nn.ReLU()]
            width = out
        layers[f"stage{i}"] = nn.Sequential(*stage)
    layers["pool"] = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    "resnet10": _resnet(10),
    "resnet18": _resnet(18),
    "resnet34": _resnet(34),
    "densenet121": _densenet121,
    "vgg": _vgg,
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


class ResNetUNet(nn.Module):
    """A U-Net whose encoder is the classifiers' ResNet (same depth and options, same
    tensor names: ``conv1``, ``bn1``, ``layer1`` .. ``layer4``), so that it can start from
    the run's classifier (``segmenter.init_weights: classifier``): features learnt from
    every labelled image, where a mask-trained U-Net sees only its masks. MONAI's
    FlexibleUNet decoder and head; one skip per stage (strides 2 to 8 under the bottom
    stage at 16), the last upsampling to full size without one."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        spatial_dims: int = 2,
        depth: int = 10,
        decoder_channels: Sequence[int] = (128, 64, 32, 16),
        **resnet_options: Any,
    ) -> None:
        super().__init__()
        if f"resnet{depth}" not in CLASSIFIERS:
            raise XaisegError(f"resnet_unet depth {depth}: choose 10, 18 or 34")
        build = CLASSIFIERS[f"resnet{depth}"]
        trunk = build(in_channels, num_classes, spatial_dims, **resnet_options)
        self.conv1, self.bn1, self.act = trunk.conv1, trunk.bn1, trunk.act
        # MONAI's ResNet skips its max-pool in forward when told to; so does this.
        self.maxpool = nn.Identity() if trunk.no_max_pool else trunk.maxpool
        for name in self.stages:
            setattr(self, name, getattr(trunk, name))
        widths = [_out_channels(getattr(self, name)) for name in self.stages]
        if len(decoder_channels) != len(self.stages):
            raise XaisegError(f"resnet_unet decoder_channels: give {len(self.stages)} widths")
        self.decoder = UNetDecoder(
            spatial_dims=spatial_dims,
            encoder_channels=(in_channels, *widths),
            decoder_channels=tuple(decoder_channels),
            act=("relu", {"inplace": True}),
            norm=("batch", {"eps": 1e-3, "momentum": 0.1}),
            dropout=0.0,
            bias=False,
            upsample="nontrainable",
            pre_conv="default",
            interp_mode="nearest",
            align_corners=None,
            is_pad=True,
        )
        self.head = SegmentationHead(spatial_dims, decoder_channels[-1], num_classes, kernel_size=3)

    stages = ("layer1", "layer2", "layer3", "layer4")  # each one skip to the decoder
    # What ``segmenter.encoder_lr_scale`` trains at its own rate.
    encoder_modules = ("conv1", "bn1", *stages)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act(self.bn1(self.conv1(images))))
        features = []
        for name in self.stages:
            x = getattr(self, name)(x)
            features.append(x)
        return self.head(self.decoder(features, skip_connect=len(features) - 1))


def _out_channels(stage: nn.Module) -> int:
    """The channels a ResNet stage puts out: the width of its last batch norm."""
    last = [m for m in stage.modules() if isinstance(m, nn.modules.batchnorm._NormBase)][-1]
    return last.num_features


SEGMENTERS: dict[str, Callable[..., nn.Module]] = {
    "unet": _unet,
    "basic_unet": _basic_unet,
    "resnet_unet": ResNetUNet,
}


class CounterfactualResidual(nn.Module):
    """An autoencoder of healthy images whose output is the evidence of a finding.

    ``reconstruct`` gives the healthy version of an image; ``forward`` the residual
    (image minus that version) in the chosen channel and direction: "bright" keeps
    what is brighter than healthy tissue, "dark" what is darker, "abs" both. Channel
    -1 takes the largest evidence over channels.
    """

    def __init__(self, autoencoder: nn.Module, channel: int = -1, direction: str = "abs"):
        super().__init__()
        if direction not in RESIDUAL_DIRECTIONS:
            raise XaisegError(f"residual direction {direction!r}: choose {RESIDUAL_DIRECTIONS}")
        self.autoencoder, self.channel, self.direction = autoencoder, channel, direction

    def reconstruct(self, images):
        return self.autoencoder(images)

    def forward(self, images):
        residual = images - self.reconstruct(images)
        return residual_evidence(residual, self.channel, self.direction)


RESIDUAL_DIRECTIONS = ("bright", "dark", "abs")


def residual_evidence(residual, channel: int, direction: str):
    """(N, C, *spatial) signed residual -> (N, 1, *spatial) evidence of one channel
    (or, with -1, the largest over channels) in one direction."""
    signed = -residual if direction == "dark" else residual
    evidence = signed.abs() if direction == "abs" else signed.clamp(min=0)
    if channel >= 0:
        return evidence[:, channel : channel + 1]
    return evidence.amax(1, keepdim=True)


def _reconstructor(network: type[nn.Module], **defaults: Any) -> Callable[..., nn.Module]:
    """A builder of ``network`` (image in, image out) as a counterfactual."""

    def build(
        in_channels: int,
        num_classes: int,
        spatial_dims: int = 2,
        residual_channel: int = -1,
        residual_direction: str = "abs",
        **options: Any,
    ) -> nn.Module:
        net = network(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=in_channels,
            **{**defaults, **options},
        )
        return CounterfactualResidual(net, residual_channel, residual_direction)

    return build


RECONSTRUCTORS: dict[str, Callable[..., nn.Module]] = {
    # A 16x narrower bottleneck than the image: too small to copy a lesion through.
    "autoencoder": _reconstructor(
        nets.AutoEncoder, channels=(16, 32, 64, 64), strides=(2, 2, 2, 2), num_res_units=1
    ),
    # Skip connections keep healthy detail sharp (little residual at edges); training on
    # coarse noise (train/counterfactual.py) keeps it from copying a lesion through.
    "denoising_unet": _reconstructor(
        nets.UNet, channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=1
    ),
}


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


def build_reconstructor(name: str, in_channels: int, num_classes: int, **options: Any) -> nn.Module:
    return _build(RECONSTRUCTORS, "reconstructor", name, in_channels, num_classes, options)
