"""MONAI network factories, by name."""

from xaiseg.models.factory import build_classifier, build_segmenter

__all__ = ["build_classifier", "build_segmenter"]
