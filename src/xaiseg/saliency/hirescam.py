"""HiRes-CAM (Draelos & Carin 2020): gradient x activation summed over channels.

Unlike Grad-CAM it does not average gradients over space, so the map shows where the
model actually looked at the layer's full resolution.
"""

import torch
from captum.attr import LayerGradientXActivation

from xaiseg.saliency.base import SaliencyMethod


class HiResCAM(SaliencyMethod):
    needs_layer = True

    def _attribute(self, images: torch.Tensor, target: int) -> torch.Tensor:
        attr = LayerGradientXActivation(self.model, self.layer).attribute(images, target=target)
        return attr.sum(dim=1, keepdim=True)
