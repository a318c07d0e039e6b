"""Any model, any target: hand-computed maps for classifier and segmenter targets."""

import pytest
import torch

from tests.test_saliency import MeanOfChannel
from xaiseg.errors import XaisegError
from xaiseg.saliency import METHODS
from xaiseg.saliency.targets import ClassTarget, PixelSetTarget, PredictedClass


class TwoChannelSegmenter(MeanOfChannel):
    """features = [2x, -x]; logits: class 0 = 0, class 1 = features channel 0."""

    def forward(self, x):
        f = self.features(x)
        return torch.cat([torch.zeros_like(f[:, :1]), f[:, :1]], dim=1)


def test_seg_gradcam_over_a_given_pixel_set():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    given = torch.zeros(1, 1, 4, 4)
    given[0, 0, 0, :2] = 1  # two pixels
    target = PixelSetTarget(1, "given")
    maps = METHODS["gradcam"](TwoChannelSegmenter(), "features")(x, target, extra=[given])
    # d(score)/d(feature0) = 1 on the two pixels: mean 2/16; channel 1 unused.
    torch.testing.assert_close(maps, 2 * x * 2 / 16)


def test_seg_hirescam_over_the_predicted_mask():
    x = torch.tensor([[[[1.0, -1.0], [2.0, -3.0]]]])
    maps = METHODS["hirescam"](TwoChannelSegmenter(), "features")(x, PixelSetTarget(1))
    # predicted class 1 where 2x > 0: gradient 1 there -> map = 2x on those pixels
    expected = torch.where(x > 0, 2 * x, torch.zeros_like(x))
    torch.testing.assert_close(maps, expected)


def test_point_and_whole_image_targets():
    out = torch.arange(2 * 2 * 3 * 3, dtype=torch.float32).view(2, 2, 3, 3)
    assert PixelSetTarget(1, (1, 2))(out).tolist() == [out[0, 1, 1, 2], out[1, 1, 1, 2]]
    assert torch.equal(PixelSetTarget(0, "all")(out), out[:, 0].flatten(1).sum(1))
    with pytest.raises(XaisegError):
        PixelSetTarget(1, "everything")


def test_class_targets():
    out = torch.tensor([[0.1, 2.0], [3.0, -1.0]])
    assert ClassTarget(1)(out).tolist() == [2.0, -1.0]
    assert PredictedClass()(out).tolist() == [2.0, 3.0]


def test_layercam_keeps_positive_gradients_only():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    maps = METHODS["layercam"](MeanOfChannel(), "features")(x, 1)
    torch.testing.assert_close(maps, 2 * x / 16)  # grad 1/16 on channel 0, 0 on channel 1
    maps0 = METHODS["layercam"](MeanOfChannel(), "features")(x, 0)
    assert maps0.abs().sum() == 0  # class 0's logit is constant: no positive gradient


def test_gradcam_plusplus_hand_computed():
    x = torch.arange(1.0, 5.0).view(1, 1, 2, 2)
    maps = METHODS["gradcam_plusplus"](MeanOfChannel(), "features")(x, 1)
    g, a = 0.25, 2 * x  # gradient of channel 0, its activation
    alpha = g**2 / (2 * g**2 + a.sum() * g**3)
    torch.testing.assert_close(maps, 4 * alpha * g * a, rtol=1e-4, atol=1e-6)


def test_smoothgrad_without_noise_is_its_base():
    x = torch.rand(2, 1, 4, 4)
    model = MeanOfChannel()
    base = METHODS["hirescam"](model, "features")(x, 1)
    smooth = METHODS["smoothgrad"](model, "features", base="hirescam", noise=0.0, n_samples=3)(x, 1)
    torch.testing.assert_close(smooth, base)


def test_misspelt_method_option_is_named():
    with pytest.raises(XaisegError, match=r"unknown option\(s\) \['nsteps'\]"):
        METHODS["integrated_gradients"](MeanOfChannel(), nsteps=4)


def test_3d_maps_come_back_at_input_size():
    from monai.networks.nets import resnet10

    model = resnet10(spatial_dims=3, n_input_channels=1, num_classes=2)
    x = torch.rand(2, 1, 16, 16, 16)
    for name in ("gradcam", "hirescam", "layercam", "gradcam_plusplus"):
        assert METHODS[name](model, "layer2")(x, 1).shape == (2, 1, 16, 16, 16)
    assert METHODS["integrated_gradients"](model, n_steps=2)(x, 1).shape == (2, 1, 16, 16, 16)


class LinearHead(torch.nn.Module):
    """features = conv(x) (3 channels); logits = 1x1 conv of features + bias."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Conv2d(1, 3, 3, padding=1)
        self.head = torch.nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.head(self.features(x))


def test_seg_hirescam_sums_to_the_target_minus_the_bias_over_the_pixel_set():
    """A head linear in the layer: logit_p = sum_c w_c A_cp + b, so gradient x activation
    summed over channels and the pixel set S is sum_S logit_p - |S| b."""
    model, x = LinearHead().eval(), torch.randn(3, 1, 6, 6)
    for region in ("predicted", "all", (2, 3)):
        target = PixelSetTarget(1, region)
        maps = METHODS["hirescam"](model, "features")(x, target)
        with torch.no_grad():
            out = model(x)
        if region == "predicted":
            pixels = (out.argmax(1) == 1).flatten(1).sum(1).float()
        else:  # the pixel count: the target of an all-ones output
            pixels = target(torch.ones_like(out))
        expected = target(out) - pixels * model.head.bias[1]
        torch.testing.assert_close(maps.flatten(1).sum(1), expected.detach())


def test_segmenter_bottleneck_is_the_default_layer():
    from xaiseg.models import build_segmenter
    from xaiseg.models.layers import bottleneck

    deep = build_segmenter("unet", 1, 2)  # channels (16, 32, 64, 128), strides (2, 2, 2)
    assert bottleneck(deep) == "model.1.submodule.1.submodule.1.submodule"
    shallow = build_segmenter("unet", 1, 2, channels=(4, 8), strides=(2,), spatial_dims=3)
    assert bottleneck(shallow) == "model.1.submodule"
    assert dict(shallow.named_modules())["model.1.submodule"].conv  # the bottom unit
    assert bottleneck(build_segmenter("basic_unet", 1, 2)) == "down_4"
    assert bottleneck(build_segmenter("resnet_unet", 1, 2, depth=10)) == "layer4"
    with pytest.raises(XaisegError, match="no default layer"):
        bottleneck(torch.nn.Conv2d(1, 1, 1))
