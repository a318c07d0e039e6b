"""Grad-CAM (Selvaraju et al. 2017): channel weights = spatially averaged gradients."""

import torch
from captum.attr import LayerGradCam

from xaiseg.saliency.base import SaliencyMethod


class GradCAM(SaliencyMethod):
    needs_layer = True

    def _attribute(self, images: torch.Tensor, target: int) -> torch.Tensor:
        # Signed: the ReLU belongs to normalisation, so negative evidence is kept.
        return LayerGradCam(self.model, self.layer).attribute(
            images, target=target, relu_attributions=False
        )
