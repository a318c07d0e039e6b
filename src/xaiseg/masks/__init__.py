"""Pseudo-masks from saliency maps: one short file per rule and per refinement step,
put together by named recipes (``recipe.py``)."""

from xaiseg.masks.base import MaskRule
from xaiseg.masks.combine import COMBINE_CHOICES, COMBINERS
from xaiseg.masks.healthy_quantile import HealthyQuantile
from xaiseg.masks.hysteresis import Hysteresis
from xaiseg.masks.intensity_otsu import IntensityOtsu
from xaiseg.masks.otsu import Otsu
from xaiseg.masks.refine import REFINERS
from xaiseg.masks.top_percent import TopPercent

RULES: dict[str, type[MaskRule]] = {
    "otsu": Otsu,
    "healthy_quantile": HealthyQuantile,
    "hysteresis": Hysteresis,
    "intensity_otsu": IntensityOtsu,
    "top_percent": TopPercent,
}

__all__ = ["COMBINERS", "COMBINE_CHOICES", "REFINERS", "RULES", "MaskRule"]
