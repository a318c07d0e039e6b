"""Saliency methods: a shared base and one short file per method."""

from xaiseg.saliency.base import SaliencyMethod
from xaiseg.saliency.gradcam import GradCAM
from xaiseg.saliency.hirescam import HiResCAM
from xaiseg.saliency.integrated_gradients import IntegratedGradients

METHODS: dict[str, type[SaliencyMethod]] = {
    "gradcam": GradCAM,
    "hirescam": HiResCAM,
    "integrated_gradients": IntegratedGradients,
}

__all__ = ["METHODS", "GradCAM", "HiResCAM", "IntegratedGradients", "SaliencyMethod"]
