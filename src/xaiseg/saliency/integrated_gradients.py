"""Integrated Gradients (Sundararajan et al. 2017) from a black baseline, via captum."""

import torch
from captum.attr import IntegratedGradients as CaptumIG

from xaiseg.saliency.base import SaliencyMethod


class IntegratedGradients(SaliencyMethod):
    def _attribute(self, images: torch.Tensor, target: int) -> torch.Tensor:
        steps = int(self.options.get("n_steps", 32))
        attr = CaptumIG(self.model).attribute(
            images,
            baselines=torch.zeros_like(images),
            target=target,
            n_steps=steps,
            internal_batch_size=int(self.options.get("internal_batch_size", 256)),
        )
        return attr.sum(dim=1, keepdim=True)
