"""Pseudo-masks from saliency maps: one short file per thresholding rule."""

from xaiseg.masks.base import MaskRule
from xaiseg.masks.intensity_otsu import IntensityOtsu
from xaiseg.masks.otsu import Otsu
from xaiseg.masks.percentile import TopPercent

RULES: dict[str, type[MaskRule]] = {
    "otsu": Otsu,
    "intensity_otsu": IntensityOtsu,
    "top_percent": TopPercent,
}

__all__ = ["RULES", "IntensityOtsu", "MaskRule", "Otsu", "TopPercent"]
