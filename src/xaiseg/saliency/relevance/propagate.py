"""Relevance through a whole network: every layer of a canonized copy is wrapped so that
the backward pass carries relevance by its rule instead of the gradient.

The relevance that starts the backward pass is the explained score's share of each
output: output x d(score)/d(output), i.e. the class logit (or, for a segmenter, the
logits of the explained pixel set).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.saliency.relevance.canonize import CONVS, NORMS, ResidualSum, canonize
from xaiseg.saliency.relevance.rules import Rule, epsilon_rule

# Linear maps without weights: the epsilon rule keeps their relevance conserved.
PARAMETER_FREE = (
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    *NORMS,
)  # fmt: skip
# Relevance passes on by the gradient: activations, max-pooling (to the winner), shapes.
PASS_THROUGH = (
    nn.ReLU, nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, ResidualSum,
)  # fmt: skip


class _Propagate(torch.autograd.Function):
    """The layer's output forward; the rule's input relevance backward."""

    @staticmethod
    def forward(ctx, x, output, layer, rule):
        ctx.save_for_backward(x, output)
        ctx.layer, ctx.rule = layer, rule
        return output.clone()

    @staticmethod
    def backward(ctx, relevance):
        x, output = ctx.saved_tensors
        return ctx.rule(ctx.layer, x, relevance, output), None, None, None


class RelevantLayer(nn.Module):
    """A layer whose backward pass is its LRP rule."""

    def __init__(self, layer: nn.Module, kind: str, rules: Mapping[str, Rule], state: dict):
        super().__init__()
        self.layer, self.kind, self.rules, self.state = layer, kind, rules, state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.kind
        if kind != "other" and self.state.setdefault("first", self) is self:
            kind = "first"
        return _Propagate.apply(x, self.layer(x), self.layer, self.rules[kind])


class RelevanceNetwork:
    """``model`` canonized, with ``rules`` per layer kind ("first", "conv", "linear")."""

    def __init__(self, model: nn.Module, rules: Mapping[str, Rule], epsilon: float = 1e-6):
        self.net = canonize(model)
        self.state: dict = {}
        kinds = {**rules, "other": epsilon_rule(epsilon)}
        _wrap_layers(self.net, kinds, self.state)

    def __call__(
        self,
        images: torch.Tensor,
        target: Callable[..., torch.Tensor],
        extra: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        """Input relevance, (N, C, *spatial): sums to the explained score (conserving rules)."""
        self.state.clear()
        x = images.detach().requires_grad_(True)
        with torch.enable_grad():
            output = self.net(x)
            score = target(output, *extra).sum()
            (share,) = torch.autograd.grad(score, output, retain_graph=True)
            (relevance,) = torch.autograd.grad(output, x, (output * share).detach())
        return relevance.detach()


def _layer_kind(layer: nn.Module) -> str | None:
    if isinstance(layer, CONVS):
        return "conv"
    if isinstance(layer, nn.Linear):
        return "linear"
    if isinstance(layer, PARAMETER_FREE):
        return "other"
    if isinstance(layer, PASS_THROUGH):
        return None
    raise XaisegError(f"LRP: no rule for a {type(layer).__name__} layer")


def _wrap_layers(net: nn.Module, rules: Mapping[str, Rule], state: dict) -> None:
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if list(child.children()):
                continue
            kind = _layer_kind(child)
            if kind is not None:
                setattr(parent, name, RelevantLayer(child, kind, rules, state))
