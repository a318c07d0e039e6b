"""Explaining an ensemble: each member's map, scaled per image to a largest magnitude
of 1 (a member with steeper gradients would otherwise outvote the others), then their
mean. Averaging the maps of classifiers trained with other seeds keeps where they agree:
a pair's pseudo-masks beat the mean of its two seeds' (docs/busi.md, docs/lgg40.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xaiseg.data.artifacts import peak_scaled
from xaiseg.models.ensemble import Ensemble
from xaiseg.saliency.targets import Target


def make_explainer(method: type, model: nn.Module, layer: str | None, **options):
    """``method`` explaining ``model``; for an ensemble, the mean over its members."""
    if isinstance(model, Ensemble):
        return MemberMean([method(m, layer, **options) for m in model.members])
    return method(model, layer, **options)


class MemberMean:
    """Called as a saliency method is: the mean of its explainers' peak-scaled maps."""

    def __init__(self, explainers: Sequence) -> None:
        self.explainers = list(explainers)

    def __call__(
        self, images: torch.Tensor, target: Target | int, extra: Sequence[torch.Tensor] = ()
    ) -> torch.Tensor:
        return torch.stack([peak_scaled(e(images, target, extra)) for e in self.explainers]).mean(0)
