"""What an explanation explains: a scalar per image, taken from the model's output.

As pytorch-grad-cam's ``targets``: a class of a classifier, its predicted class, or,
for a segmenter, the sum of one class's logits over a pixel set (the predicted mask,
a given mask, the whole image, or one point) -- Seg-Grad-CAM's target.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xaiseg.errors import XaisegError


class Target:
    """Maps the model's output (and per-image extra tensors) to one score per image."""

    def __call__(self, output: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ClassTarget(Target):
    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, output: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return output[:, self.index]


class PredictedClass(Target):
    def __call__(self, output: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return output.gather(1, output.argmax(1, keepdim=True).detach())[:, 0]


class PixelSetTarget(Target):
    """Sum of class ``index``'s logits over a pixel set of a segmenter's output.

    ``region``: "predicted" (pixels whose argmax is the class), "given" (a mask passed
    as the first extra tensor, (N, 1, *spatial)), "all", or a point (one index per
    spatial axis).
    """

    def __init__(self, index: int = 1, region: str | Sequence[int] = "predicted") -> None:
        if isinstance(region, str) and region not in ("predicted", "given", "all"):
            raise XaisegError(f"pixel-set region {region!r}: predicted, given, all or a point")
        self.index, self.region = index, region

    def __call__(self, output: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        logits = output[:, self.index]
        if self.region == "all":
            pixels = torch.ones_like(logits)
        elif self.region == "predicted":
            pixels = (output.argmax(1) == self.index).to(logits.dtype).detach()
        elif self.region == "given":
            if not extra:
                raise XaisegError("pixel-set target 'given' needs a mask per image")
            pixels = extra[0][:, 0].to(logits.dtype)
        else:
            pixels = torch.zeros_like(logits)
            pixels[(slice(None), *self.region)] = 1
        return (logits * pixels).flatten(1).sum(1)


def as_target(target: Target | int) -> Target:
    return ClassTarget(target) if isinstance(target, int) else target


class TargetedModel(nn.Module):
    """``model`` whose output is the target's score, (N, 1), so any attribution method
    can explain any model: captum explains output 0 of this wrapper."""

    def __init__(self, model: nn.Module, target: Target) -> None:
        super().__init__()
        self.model, self.target = model, target

    def forward(self, images: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.target(self.model(images), *extra).unsqueeze(1)
