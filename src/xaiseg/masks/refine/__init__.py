"""Post-processing steps of a recipe: each ``(mask, saliency, image) -> mask``, one file
per step, found by its file (``xaiseg.registry``)."""

from xaiseg.masks.refine.base import RefineStep
from xaiseg.registry import load

REFINERS: dict[str, type[RefineStep]] = load("refinement step")

__all__ = ["REFINERS", "RefineStep"]
