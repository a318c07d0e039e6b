"""Layer-wise Relevance Propagation (Bach et al. 2015) with per-layer rules.

Own code (``relevance/``) rather than captum's LRP: captum has no flat or general
alpha-beta rule, no BatchNorm folding and no residual canonizer. A composite names the
rule of each layer kind; ``rules`` overrides any of them.
"""

from dataclasses import dataclass, field

import torch

from xaiseg.errors import XaisegError
from xaiseg.saliency.base import SaliencyMethod
from xaiseg.saliency.relevance import COMPOSITES, LAYER_KINDS, RULES, RelevanceNetwork


@dataclass(frozen=True)
class LRPOptions:
    composite: str = "epsilon_plus_flat"
    rules: dict[str, str] = field(default_factory=dict)  # {first|conv|linear: rule}
    epsilon: float = 1e-6
    gamma: float = 0.25
    alpha: float = 2.0  # alpha - beta must be 1: the relevance is conserved
    beta: float = 1.0


class LRP(SaliencyMethod):
    Options = LRPOptions

    def __init__(self, model, target_layer=None, **options) -> None:
        super().__init__(model, target_layer, **options)
        self.network = RelevanceNetwork(model, layer_rules(self.options), self.options.epsilon)

    def attribute(self, forward, images, extra):
        # fp32 under any autocast: relevance is a chain of ratios that bf16 would not
        # conserve, and the rules' own maps mix the layers' fp32 weights with it.
        with torch.autocast(images.device.type, enabled=False):
            relevance = self.network(images.float(), forward.target, [e.float() for e in extra])
        return relevance.sum(dim=1, keepdim=True)


def layer_rules(options: LRPOptions) -> dict:
    """Each layer kind's rule, built with the options' parameters."""
    if options.composite not in COMPOSITES:
        raise XaisegError(f"LRP composite {options.composite!r}: choose {sorted(COMPOSITES)}")
    names = {**COMPOSITES[options.composite], **options.rules}
    problems = [f"layer kind {k!r}" for k in names if k not in LAYER_KINDS]
    problems += [f"rule {v!r}" for v in names.values() if v not in RULES]
    if problems:
        raise XaisegError(
            f"LRP rules: unknown {', '.join(problems)}; kinds {LAYER_KINDS}, rules {sorted(RULES)}"
        )
    if abs(options.alpha - options.beta - 1) > 1e-9:
        raise XaisegError(
            f"LRP alpha - beta must be 1 (alpha {options.alpha}, beta {options.beta})"
        )
    eps = options.epsilon
    build = {
        "epsilon": lambda: RULES["epsilon"](eps),
        "gamma": lambda: RULES["gamma"](options.gamma, eps),
        "alpha_beta": lambda: RULES["alpha_beta"](options.alpha, options.beta, eps),
        "zplus": lambda: RULES["zplus"](eps),
        "flat": lambda: RULES["flat"](eps),
    }
    return {kind: build[name]() for kind, name in names.items()}
