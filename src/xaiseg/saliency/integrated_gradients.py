"""Integrated Gradients (Sundararajan et al. 2017) from a constant baseline, via captum."""

from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients as CaptumIG

from xaiseg.saliency.base import SaliencyMethod


@dataclass(frozen=True)
class IGOptions:
    n_steps: int = 32
    internal_batch_size: int = 256
    baseline: float = 0.0  # the image a "nothing here" input is made of


class IntegratedGradients(SaliencyMethod):
    Options = IGOptions

    def attribute(self, forward, images, extra):
        attr = CaptumIG(forward).attribute(
            images,
            baselines=torch.full_like(images, self.options.baseline),
            target=0,
            additional_forward_args=extra or None,
            n_steps=self.options.n_steps,
            internal_batch_size=self.options.internal_batch_size,
        )
        return attr.sum(dim=1, keepdim=True)
