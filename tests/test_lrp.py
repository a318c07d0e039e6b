"""LRP: conservation through real layers, and every rule against hand-computed arrays."""

import pytest
import torch
from torch import nn

from xaiseg.errors import XaisegError
from xaiseg.models import build_classifier, build_segmenter
from xaiseg.saliency import METHODS
from xaiseg.saliency.relevance import COMPOSITES
from xaiseg.saliency.relevance.canonize import canonize


def _no_biases(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random batch-norm scales and variances, every bias and mean zero: nothing but the
    input can absorb relevance, so conserving rules must give back the whole logit."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
            module.weight.data = torch.rand(module.weight.shape, generator=gen) + 0.5
            module.running_var = torch.rand(module.running_var.shape, generator=gen) + 0.5
            module.bias.data.zero_()
            module.running_mean.zero_()
        elif getattr(module, "bias", None) is not None:
            module.bias.data.zero_()
    return model.eval()


def _relevance_and_logit(model, x, composite="epsilon"):
    explainer = METHODS["lrp"](model, composite=composite, epsilon=1e-9)
    relevance = explainer.network(x, lambda out: out[:, 1])
    return relevance.flatten(1).sum(1), model(x)[:, 1].detach()


def test_epsilon_relevance_sums_to_the_logit_through_conv_bn_relu_pool_linear():
    torch.manual_seed(0)
    net = _no_biases(nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2, bias=False),
    ))  # fmt: skip
    x = torch.randn(3, 2, 16, 16)
    total, logit = _relevance_and_logit(net, x)
    torch.testing.assert_close(total, logit, rtol=1e-3, atol=0)


@pytest.mark.parametrize(
    "network,dims,options",
    [("resnet10", 2, {}), ("resnet10", 2, {"dilate_stages": 1}), ("vgg", 3, {})],
)
def test_the_factorys_networks_conserve_relevance(network, dims, options):
    """The MONAI ResNet through its canonizer (folded norms, proportional residual sum);
    the VGG in 3D."""
    torch.manual_seed(1)
    net = _no_biases(build_classifier(network, 1, 2, spatial_dims=dims, **options), seed=1)
    x = torch.randn(2, 1, *([16] * dims))
    for composite in COMPOSITES:
        total, logit = _relevance_and_logit(net, x, composite)
        torch.testing.assert_close(total, logit, rtol=1e-4, atol=0)


def test_canonizing_keeps_the_function_and_leaves_the_original_alone():
    torch.manual_seed(2)
    net = build_classifier("resnet10", 2, 2)
    net.train()
    x = torch.randn(4, 2, 32, 32)
    net(x)  # non-trivial running statistics
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    copy = canonize(net)
    torch.testing.assert_close(copy(x), net(x), rtol=1e-4, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy.modules())


def two_layers() -> nn.Module:
    """x (2) -> Linear W1 -> ReLU -> Linear w2 -> one logit."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight[:] = torch.tensor([[1.0, 0.5], [-1.0, 1.0]])
        net[2].weight[:] = torch.tensor([[1.0, -1.0]])
    return net


# x = [1, 2]: hidden z = [2, 1] (both pass the ReLU), logit y = 2 - 1 = 1.
#  epsilon: top [2, -1]; from unit 1 (z 2): [1, 1]; from unit 2 (z 1): -1 * [-1, 2] / 1.
#  gamma 0.25: w2' = [1.25, -1], z' 1.5, top [5/3, -2/3]; W1' = [[1.25, .625], [-1, 1.25]]:
#    unit 1 z' 2.5 gives 5/3 * [1.25, 1.25] / 2.5; unit 2 z' 1.5 gives -2/3 * [-1, 2.5] / 1.5.
#  alpha 2 beta 1: top 2 * [1, 0] - [0, 1] = [2, -1]; unit 1 has no negative part:
#    2 * 2 * [.5, .5]; unit 2 (+2 from x2, -1 from x1): -1 * (2 * [0, 1] - [1, 0]).
#  z+: top [1, 0]; unit 1 gives [.5, .5]; unit 2 nothing.
#  flat: every weight and input 1: top [.5, .5]; each unit halves its share: [.5, .5].
HAND = {
    "epsilon": [2.0, -1.0],
    "gamma": [5 / 6 + 4 / 9, 5 / 6 - 10 / 9],
    "alpha_beta": [3.0, 0.0],
    "zplus": [0.5, 0.5],
    "flat": [0.5, 0.5],
}


@pytest.mark.parametrize("rule", sorted(HAND))
def test_every_rule_matches_a_hand_computed_relevance(rule):
    every = {"first": rule, "linear": rule}
    explainer = METHODS["lrp"](two_layers(), composite="epsilon", rules=every, epsilon=1e-12)
    relevance = explainer.network(torch.tensor([[1.0, 2.0]]), lambda out: out[:, 0])
    torch.testing.assert_close(relevance, torch.tensor([HAND[rule]]))


def test_gamma_amplifies_each_output_towards_its_own_sign():
    """The top weights [1, -3] make the logit negative (2 - 3 = -1): there gamma takes
    w + 0.25 w- = [1, -3.75], z' -1.75, top relevance -1 x [2, -3.75] / -1.75 = [8/7,
    -15/7]; the hidden units (positive) as in HAND: 8/7 x [1.25, 1.25] / 2.5 = [4/7, 4/7]
    and -15/7 x [-1, 2.5] / 1.5 = [10/7, -25/7]: [2, -3]. (w + 0.25 w+ = [1.25, -3] would
    divide by z' -0.5, near zero: [6.5, -7.5].)"""
    net = two_layers()
    with torch.no_grad():
        net[2].weight[:] = torch.tensor([[1.0, -3.0]])
    every = {"first": "gamma", "linear": "gamma"}
    explainer = METHODS["lrp"](net, composite="epsilon", rules=every, epsilon=1e-12)
    relevance = explainer.network(torch.tensor([[1.0, 2.0]]), lambda out: out[:, 0])
    torch.testing.assert_close(relevance, torch.tensor([[2.0, -3.0]]))


def test_the_method_returns_one_signed_map_per_image_at_input_size():
    torch.manual_seed(3)
    net = build_classifier("vgg", 3, 2, channels=(4, 8), convs_per_stage=1).eval()
    maps = METHODS["lrp"](net)(torch.randn(2, 3, 12, 12), 1)
    assert maps.shape == (2, 1, 12, 12) and torch.isfinite(maps).all()


def test_networks_without_a_canonizer_and_bad_options_are_refused():
    unet = build_segmenter("unet", 1, 2)  # residual units and skip concatenations
    with pytest.raises(XaisegError, match=r"no canonizer.*UNet"):
        METHODS["lrp"](unet)
    with pytest.raises(XaisegError, match="no rule for a Sigmoid"):
        METHODS["lrp"](nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()))
    with pytest.raises(XaisegError, match="composite"):
        METHODS["lrp"](two_layers(), composite="best")
    with pytest.raises(XaisegError, match="unknown rule 'z'"):
        METHODS["lrp"](two_layers(), rules={"conv": "z"})
    with pytest.raises(XaisegError, match="alpha - beta must be 1"):
        METHODS["lrp"](two_layers(), alpha=2.0, beta=0.5)


def test_lrp_runs_in_fp32_under_a_bf16_autocast():
    """A bf16 run (``precision: bf16``) explains with LRP in fp32: the same map."""
    torch.manual_seed(0)
    model = build_classifier("resnet10", 1, 2, spatial_dims=2).eval()
    x = torch.randn(2, 1, 16, 16)
    explainer = METHODS["lrp"](model, composite="epsilon_alpha2_beta1_flat")
    plain = explainer(x, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = explainer(x, 1)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, plain)
