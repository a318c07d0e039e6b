"""Saliency methods: a shared base and one short file per method, found by its file
(``xaiseg.registry``): a new method is a new module here and nothing else."""

from xaiseg.registry import load
from xaiseg.saliency.base import SaliencyMethod

METHODS: dict[str, type[SaliencyMethod]] = load("saliency method")

__all__ = ["METHODS", "SaliencyMethod"]
