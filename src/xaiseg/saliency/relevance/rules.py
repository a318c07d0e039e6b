"""LRP rules (Bach et al. 2015; Montavon et al. 2019): how one layer hands the relevance
of its outputs to its inputs.

Each rule is the "gradient trick": a (modified) forward z of the layer, s = R / z, and
the inputs' relevance is input x (dz/dinput)^T s. The layer's own weights are read,
never changed. Conv layers of any dimension and Linear layers are supported.

Cost: (dz/dinput)^T s of a convolution or linear map is one transposed map, computed
directly (``input_gradient``, the kernel autograd itself calls), and the epsilon rule
takes z from the forward pass; so a conv layer costs two maps under epsilon and four
under alpha-beta on non-negative inputs (every layer after a ReLU), not a re-run of
autograd per layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# (layer, its input, its output's relevance, its output) -> the input's relevance.
Rule = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
CONV_INPUT_GRADIENTS = {
    nn.Conv1d: torch.nn.grad.conv1d_input,
    nn.Conv2d: torch.nn.grad.conv2d_input,
    nn.Conv3d: torch.nn.grad.conv3d_input,
}


def stabilise(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """z pushed away from zero by epsilon, keeping its sign (zero counts as positive)."""
    return torch.where(z >= 0, z + epsilon, z - epsilon)


def linear_forward(
    layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``layer``'s affine map with other weights (Conv1d/2d/3d or Linear)."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight, bias)
    return layer._conv_forward(x, weight, bias)


def input_gradient(
    layer: nn.Module, shape: torch.Size, weight: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor | None:
    """(d layer(x; weight) / dx)^T grad for a zero-padded conv or a linear layer, without
    a forward pass; None for any other layer (autograd then)."""
    if isinstance(layer, nn.Linear):
        return grad @ weight
    conv_input = CONV_INPUT_GRADIENTS.get(type(layer))
    if conv_input is None or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        return None
    return conv_input(
        shape, weight, grad, layer.stride, layer.padding, layer.dilation, layer.groups
    )


def _bias(layer: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor]):
    return None if layer.bias is None else transform(layer.bias)


def _relevance(z: torch.Tensor, inputs: list[torch.Tensor], relevance, epsilon) -> list:
    grads = torch.autograd.grad(z, inputs, relevance / stabilise(z, epsilon))
    return [x * g for x, g in zip(inputs, grads, strict=True)]


def _direct(layer, x, weight, z, relevance, epsilon) -> torch.Tensor | None:
    """x * (dz/dx)^T (R / z) by the transposed map; None where autograd must do it."""
    if getattr(layer, "weight", None) is None:
        return None
    grad = input_gradient(layer, x.shape, weight, relevance / stabilise(z, epsilon))
    return None if grad is None else x * grad


def epsilon_rule(epsilon: float = 1e-6) -> Rule:
    """R_i = sum_j x_i w_ij / (z_j + eps sign z_j) R_j; also for any parameter-free layer."""

    def propagate(layer, x, relevance, output):
        direct = _direct(layer, x, getattr(layer, "weight", None), output, relevance, epsilon)
        if direct is not None:
            return direct
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            return _relevance(layer(x), [x], relevance, epsilon)[0]

    return propagate


def gamma_rule(gamma: float = 0.25, epsilon: float = 1e-6) -> Rule:
    """Epsilon rule on weights amplified towards each output's own sign (zennit's Gamma):
    contributions of the output's sign count 1 + gamma times. w + gamma w+ alone lets the
    denominator of a negative output (a convolution feeding a residual sum unrectified)
    cross zero, and relevance leaks there."""

    def amplified(layer, clamp):
        weight = layer.weight + gamma * clamp(layer.weight)
        return weight, _bias(layer, lambda b: b + gamma * clamp(b))

    def propagate(layer, x, relevance, output):
        (wp, bp), (wn, bn) = amplified(layer, _plus), amplified(layer, _minus)
        rising = torch.where(output >= 0, relevance, torch.zeros_like(relevance))
        falling = relevance - rising
        if bool(x.min() >= 0):  # after a ReLU: one amplified map per sign, taken directly
            up = _direct(layer, x, wp, linear_forward(layer, x, wp, bp), rising, epsilon)
            if up is not None:
                z_down = linear_forward(layer, x, wn, bn)
                return up + _direct(layer, x, wn, z_down, falling, epsilon)
        # x- through the other sign's weights amplifies the same sign.
        up = _signed_inputs_relevance(layer, x, (wp, bp), wn, rising, epsilon)
        return up + _signed_inputs_relevance(layer, x, (wn, bn), wp, falling, epsilon)

    return propagate


def _signed_inputs_relevance(layer, x, for_xp, weight_xn, relevance, epsilon) -> torch.Tensor:
    """Relevance of ``x`` through z = x+ w_a + b + x- w_b, where ``for_xp`` = (w_a, b) and
    ``weight_xn`` = w_b: the rules that treat the inputs' two signs apart."""
    xp = x.clamp(min=0).detach().requires_grad_(True)
    xn = x.clamp(max=0).detach().requires_grad_(True)
    with torch.enable_grad():
        z = linear_forward(layer, xp, *for_xp) + linear_forward(layer, xn, weight_xn, None)
        rp, rn = _relevance(z, [xp, xn], relevance, epsilon)
    return rp + rn


def _plus(t: torch.Tensor) -> torch.Tensor:
    return t.clamp(min=0)


def _minus(t: torch.Tensor) -> torch.Tensor:
    return t.clamp(max=0)


def alpha_beta_rule(alpha: float = 2.0, beta: float = 1.0, epsilon: float = 1e-6) -> Rule:
    """alpha x (share of the positive contributions) - beta x (share of the negative ones).

    Contributions are signed by x_i w_ij, so negative inputs (a first layer on a
    normalised image) count too: x+ w+ and x- w- are positive, x+ w- and x- w+ negative.
    """

    def part(layer, x, relevance, positive):
        # Positive contributions: x+ through w+ and x- through w-; negative: the others.
        # A neuron without contributions of this sign passes none of its relevance.
        for_xp, for_xn = (_plus, _minus) if positive else (_minus, _plus)
        weighted, weight_xn = (for_xp(layer.weight), _bias(layer, for_xp)), for_xn(layer.weight)
        return _signed_inputs_relevance(layer, x, weighted, weight_xn, relevance, epsilon)

    def propagate(layer, x, relevance, output):
        if bool(x.min() >= 0):  # after a ReLU: x- is zero, and so is all it carries
            direct = _nonnegative_alpha_beta(layer, x, relevance, output, alpha, beta, epsilon)
            if direct is not None:
                return direct
        positive = part(layer, x, relevance, True)
        if beta == 0:
            return alpha * positive
        return alpha * positive - beta * part(layer, x, relevance, False)

    return propagate


def _nonnegative_alpha_beta(layer, x, relevance, output, alpha, beta, epsilon):
    """Alpha-beta on x >= 0 in three maps, not four: z+ = x w+ + b+ by one forward map,
    z- as the layer's output less z+ (the output is x w+ + x w- + b+ + b-), and one
    transposed map per sign; None where those cannot be taken directly (autograd then)."""
    weight = getattr(layer, "weight", None)
    if weight is None:
        return None
    positive = weight.clamp(min=0)
    zp = linear_forward(layer, x, positive, _bias(layer, lambda b: b.clamp(min=0)))
    grad_p = input_gradient(layer, x.shape, positive, relevance / stabilise(zp, epsilon))
    if grad_p is None:
        return None
    if beta == 0:
        return x * (alpha * grad_p)
    zn = output - zp
    negative = weight.clamp(max=0)
    grad_n = input_gradient(layer, x.shape, negative, relevance / stabilise(zn, epsilon))
    return x * (alpha * grad_p - beta * grad_n)


def zplus_rule(epsilon: float = 1e-6) -> Rule:
    """Positive contributions only (alpha 1, beta 0)."""
    return alpha_beta_rule(1.0, 0.0, epsilon)


def flat_rule(epsilon: float = 1e-6) -> Rule:
    """Relevance spread evenly over each output's receptive field (weights and inputs
    read as 1): the usual choice for the first layer, where pixel values mean little."""

    def propagate(layer, x, relevance, output):
        ones = torch.ones_like(x).requires_grad_(True)
        with torch.enable_grad():
            z = linear_forward(layer, ones, torch.ones_like(layer.weight), None)
            return _relevance(z, [ones], relevance, epsilon)[0]

    return propagate


RULES: dict[str, Callable[..., Rule]] = {
    "epsilon": epsilon_rule,
    "gamma": gamma_rule,
    "alpha_beta": alpha_beta_rule,
    "zplus": zplus_rule,
    "flat": flat_rule,
}
