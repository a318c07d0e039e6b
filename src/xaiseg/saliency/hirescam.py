"""HiRes-CAM (Draelos & Carin 2020): gradient x activation summed over channels.

Unlike Grad-CAM it does not average gradients over space, so the map shows where the
model actually looked at the layer's full resolution.
"""

from captum.attr import LayerGradientXActivation

from xaiseg.saliency.base import SaliencyMethod


class HiResCAM(SaliencyMethod):
    needs_layer = True

    def attribute(self, forward, images, extra):
        attr = LayerGradientXActivation(forward, self.layer).attribute(
            images, target=0, additional_forward_args=extra or None
        )
        return attr.sum(dim=1, keepdim=True)
