"""Canonizers: an explainable copy of a network with the same function, in the form LRP
rules need (Guillemard et al.; zennit's canonizers).

- BatchNorm folded into the convolution before it (one affine layer, one rule).
- A residual block's ``out += shortcut`` made a module (``ResidualSum``) that shares the
  relevance of the sum between its two terms in proportion to them; the gradient of a
  plain ``+`` would hand each term the whole relevance and double it.
- In-place activations made out-of-place, so relevance wrappers see every tensor.

Only networks whose every container is known here are accepted: a functional operation
hidden in an unknown module's ``forward`` would silently break conservation.
"""

from __future__ import annotations

import copy
import itertools
import types

import torch
from monai.networks.nets.resnet import ResNet, ResNetBlock, ResNetBottleneck
from torch import nn

from xaiseg.errors import XaisegError

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Containers whose forward is their children in order, or is canonized below.
KNOWN_CONTAINERS = (nn.Sequential, ResNet, ResNetBlock, ResNetBottleneck)


class ResidualSum(nn.Module):
    """a + b, whose relevance goes to a and b in proportion to their values."""

    def __init__(self, epsilon: float = 1e-6) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _ProportionalSum.apply(a, b, self.epsilon)


class _ProportionalSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, epsilon):
        ctx.save_for_backward(a, b)
        ctx.epsilon = epsilon
        return a + b

    @staticmethod
    def backward(ctx, relevance):
        a, b = ctx.saved_tensors
        total = a + b
        share = relevance / (total + ctx.epsilon * torch.where(total >= 0, 1.0, -1.0))
        return a * share, b * share, None


def canonize(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` ready for LRP; the original is left untouched."""
    net = copy.deepcopy(model).eval()
    unknown = [
        f"{name or 'the model'} ({type(module).__name__})"
        for name, module in net.named_modules()
        if list(module.children()) and not isinstance(module, KNOWN_CONTAINERS)
    ]
    if unknown:
        raise XaisegError(
            "LRP explains plain networks (nn.Sequential, e.g. the 'vgg' classifier) and "
            f"MONAI ResNets; these parts have no canonizer: {unknown[:5]}"
        )
    for module in list(net.modules()):
        _fold_norms(module)
        if isinstance(module, ResNetBlock | ResNetBottleneck):
            _canonize_block(module)
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return net


def fold(conv: nn.Module, norm: nn.Module) -> None:
    """conv followed by eval-mode batch norm -> one convolution with a bias."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shape = (-1,) + (1,) * (conv.weight.ndim - 1)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight * scale.view(shape))
        conv.bias = nn.Parameter((bias - norm.running_mean) * scale + norm.bias)


def _fold_norms(module: nn.Module) -> None:
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, CONVS) and isinstance(norm, NORMS):
                fold(conv, norm)
                module._modules[second] = nn.Identity()
    for i in (1, 2, 3):  # MONAI ResNet stem and blocks: conv<i> then bn<i>
        conv, norm = getattr(module, f"conv{i}", None), getattr(module, f"bn{i}", None)
        if isinstance(conv, CONVS) and isinstance(norm, NORMS):
            fold(conv, norm)
            setattr(module, f"bn{i}", nn.Identity())


def _canonize_block(block: nn.Module) -> None:
    if block.downsample is not None and not isinstance(block.downsample, nn.Sequential):
        raise XaisegError(
            "LRP: a ResNet shortcut of type 'A' (pooling and zero padding) has no canonizer;"
            " use shortcut_type 'B'"
        )
    block.residual_sum = ResidualSum()
    convs = 3 if isinstance(block, ResNetBottleneck) else 2
    block.forward = types.MethodType(_block_forward(convs), block)


def _block_forward(convs: int):
    """MONAI's ResNetBlock / ResNetBottleneck forward with the sum as a module."""

    def forward(self, x):
        out = x
        for i in range(1, convs + 1):
            out = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(out))
            if i < convs:
                out = self.act(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(self.residual_sum(out, shortcut))

    return forward
