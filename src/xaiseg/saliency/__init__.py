"""Saliency methods: a shared base and one short file per method."""

from xaiseg.saliency.base import SaliencyMethod
from xaiseg.saliency.counterfactual import Counterfactual
from xaiseg.saliency.gradcam import GradCAM
from xaiseg.saliency.gradcam_plusplus import GradCAMPlusPlus
from xaiseg.saliency.hirescam import HiResCAM
from xaiseg.saliency.integrated_gradients import IntegratedGradients
from xaiseg.saliency.layercam import LayerCAM
from xaiseg.saliency.lrp import LRP
from xaiseg.saliency.smoothgrad import SmoothGrad

METHODS: dict[str, type[SaliencyMethod]] = {
    "counterfactual": Counterfactual,
    "gradcam": GradCAM,
    "gradcam_plusplus": GradCAMPlusPlus,
    "hirescam": HiResCAM,
    "integrated_gradients": IntegratedGradients,
    "layercam": LayerCAM,
    "lrp": LRP,
    "smoothgrad": SmoothGrad,
}

__all__ = ["METHODS", "SaliencyMethod"]
