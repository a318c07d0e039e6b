"""The factory's networks: what an option changes, checked on the modules themselves."""

import pytest
import torch

from xaiseg.errors import XaisegError
from xaiseg.models import build_classifier, build_segmenter


def _stage_sizes(model, x):
    sizes = {}
    for name in ("layer1", "layer2", "layer3", "layer4"):
        getattr(model, name).register_forward_hook(
            lambda module, inputs, out, name=name: sizes.__setitem__(name, out.shape[-1])
        )
    model(x)
    return sizes


@pytest.mark.parametrize("dims", [2, 3])
def test_dilated_stages_keep_their_inputs_resolution_with_the_same_weights(dims):
    x = torch.randn(1, 1, *([32] * dims))
    plain = build_classifier("resnet10", 1, 2, spatial_dims=dims).eval()
    dilated = build_classifier("resnet10", 1, 2, spatial_dims=dims, dilate_stages=2).eval()
    # Stem stride 2, then stages at strides 2, 4, 8, 16 (32 px: 16, 8, 4, 2); the last two
    # dilated stay at stride 4 (8 px).
    assert _stage_sizes(plain, x) == {"layer1": 16, "layer2": 8, "layer3": 4, "layer4": 2}
    assert _stage_sizes(dilated, x) == {"layer1": 16, "layer2": 8, "layer3": 8, "layer4": 8}
    dilated.load_state_dict(plain.state_dict())  # same shapes: one checkpoint serves both
    # layer3 sees stride-4 spacing at its first convolution, dilation 2 after it; layer4
    # sees 2 at its first, 4 after it (each 3x3 padded by its dilation).
    assert dilated.layer3[0].conv1.dilation == (1,) * dims
    assert dilated.layer3[0].conv2.dilation == (2,) * dims
    assert dilated.layer4[0].conv1.dilation == (2,) * dims
    assert dilated.layer4[0].conv2.dilation == (4,) * dims
    assert dilated.layer4[0].conv2.padding == (4,) * dims
    assert dilated.layer4[0].downsample[0].stride == (1,) * dims


def test_more_dilated_stages_than_a_resnet_has_are_refused():
    with pytest.raises(XaisegError, match="dilate_stages 4"):
        build_classifier("resnet10", 1, 2, dilate_stages=4)


@pytest.mark.parametrize("dims", [2, 3])
def test_the_resnet_unet_answers_at_full_size_with_the_classifiers_tensor_names(dims):
    x = torch.randn(2, 1, *([32] * dims))
    unet = build_segmenter("resnet_unet", 1, 2, spatial_dims=dims, depth=10).eval()
    assert unet(x).shape == (2, 2, *([32] * dims))
    # Encoder stages at the classifier's strides 2, 4, 8, 16 (32 px: 16, 8, 4, 2).
    assert _stage_sizes(unet, x) == {"layer1": 16, "layer2": 8, "layer3": 4, "layer4": 2}
    classifier = build_classifier("resnet10", 1, 2, spatial_dims=dims).state_dict()
    segmenter = unet.state_dict()
    shared = [n for n in classifier if n in segmenter]
    # Every tensor but the classifier's linear head has its twin, of the same shape.
    assert sorted(set(classifier) - set(shared)) == ["fc.bias", "fc.weight"]
    assert all(classifier[n].shape == segmenter[n].shape for n in shared)


def test_a_resnet_unet_of_an_unknown_depth_or_decoder_is_refused():
    with pytest.raises(XaisegError, match="resnet_unet depth 12"):
        build_segmenter("resnet_unet", 1, 2, depth=12)
    with pytest.raises(XaisegError, match="decoder_channels: give 4 widths"):
        build_segmenter("resnet_unet", 1, 2, decoder_channels=(8, 8))
