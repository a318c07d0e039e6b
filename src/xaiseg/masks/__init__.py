"""Pseudo-masks from saliency maps: one short file per rule and per refinement step,
found by their files (``xaiseg.registry``), put together by named recipes
(``recipe.py``)."""

from xaiseg.masks.base import MaskRule
from xaiseg.masks.combine import COMBINE_CHOICES, COMBINERS
from xaiseg.masks.refine import REFINERS
from xaiseg.registry import load

RULES: dict[str, type[MaskRule]] = load("mask rule")

__all__ = ["COMBINERS", "COMBINE_CHOICES", "REFINERS", "RULES", "MaskRule"]
