"""Layer-wise Relevance Propagation, own code: rules, composites, canonizers, and the
backward pass that carries relevance through a network."""

from xaiseg.saliency.relevance.composites import COMPOSITES, LAYER_KINDS
from xaiseg.saliency.relevance.propagate import RelevanceNetwork
from xaiseg.saliency.relevance.rules import RULES

__all__ = ["COMPOSITES", "LAYER_KINDS", "RULES", "RelevanceNetwork"]
