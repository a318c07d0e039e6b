"""MONAI networks by name, and networks as file artifacts (spec + weights)."""

from xaiseg.models.factory import (
    CLASSIFIERS,
    RECONSTRUCTORS,
    SEGMENTERS,
    build_classifier,
    build_segmenter,
)
from xaiseg.models.spec import NetworkSpec, build_network, load_network, save_network

__all__ = [
    "CLASSIFIERS",
    "RECONSTRUCTORS",
    "SEGMENTERS",
    "NetworkSpec",
    "build_classifier",
    "build_network",
    "build_segmenter",
    "load_network",
    "save_network",
]
