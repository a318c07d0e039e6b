"""LayerCAM (Jiang et al. 2021): positive gradients weight each activation pixel.

Element-wise weights keep fine detail at shallow layers, where Grad-CAM's averaged
weights blur.
"""

from xaiseg.saliency.base import SaliencyMethod, layer_activation_and_gradient


class LayerCAM(SaliencyMethod):
    needs_layer = True

    def attribute(self, forward, images, extra):
        activation, gradient = layer_activation_and_gradient(forward, self.layer, images, extra)
        return (gradient.clamp(min=0) * activation).sum(dim=1, keepdim=True)
