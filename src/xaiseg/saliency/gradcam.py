"""Grad-CAM (Selvaraju et al. 2017): channel weights = spatially averaged gradients."""

from captum.attr import LayerGradCam

from xaiseg.saliency.base import SaliencyMethod


class GradCAM(SaliencyMethod):
    needs_layer = True

    def attribute(self, forward, images, extra):
        # Signed: the ReLU belongs to normalisation, so negative evidence is kept.
        return LayerGradCam(forward, self.layer).attribute(
            images, target=0, additional_forward_args=extra or None, relu_attributions=False
        )
