"""Grad-CAM++ (Chattopadhay et al. 2018): weights from higher-order gradient terms,
so several instances of a class (several lesions) each get their share."""

import torch

from xaiseg.saliency.base import SaliencyMethod, layer_activation_and_gradient, spatial_dims


class GradCAMPlusPlus(SaliencyMethod):
    needs_layer = True

    def attribute(self, forward, images, extra):
        activation, gradient = layer_activation_and_gradient(forward, self.layer, images, extra)
        dims = spatial_dims(activation)
        # The closed form for an exponential score (as pytorch-grad-cam computes it).
        g2, g3 = gradient**2, gradient**3
        summed = activation.sum(dim=dims, keepdim=True)
        alpha = g2 / (2 * g2 + summed * g3 + 1e-7)
        alpha = torch.where(gradient != 0, alpha, torch.zeros_like(alpha))
        weights = (alpha * gradient.clamp(min=0)).sum(dim=dims, keepdim=True)
        return (weights * activation).sum(dim=1, keepdim=True)
