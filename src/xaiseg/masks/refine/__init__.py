"""Post-processing steps of a recipe: each ``(mask, saliency, image) -> mask``."""

from xaiseg.masks.refine.base import RefineStep
from xaiseg.masks.refine.fill_holes import FillHoles
from xaiseg.masks.refine.inside_foreground import InsideForeground
from xaiseg.masks.refine.keep_largest import KeepLargest
from xaiseg.masks.refine.random_walker import RandomWalker
from xaiseg.masks.refine.remove_small import RemoveSmall
from xaiseg.masks.refine.superpixels import Superpixels

REFINERS: dict[str, type[RefineStep]] = {
    "fill_holes": FillHoles,
    "inside_foreground": InsideForeground,
    "keep_largest": KeepLargest,
    "random_walker": RandomWalker,
    "remove_small": RemoveSmall,
    "superpixels": Superpixels,
}

__all__ = ["REFINERS", "RefineStep"]
