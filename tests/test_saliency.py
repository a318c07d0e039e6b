"""Saliency methods on networks whose attributions can be computed by hand."""

import torch
from torch import nn

from xaiseg.saliency import METHODS


class MeanOfChannel(nn.Module):
    """logit_1 = mean of channel 0 of ``features``; logit_0 = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.features.weight[:] = torch.tensor([2.0, -1.0]).view(2, 1, 1, 1)

    def forward(self, x):
        m = self.features(x)[:, 0].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(m), m], dim=1)


def test_gradcam_equals_activation_of_the_used_channel():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    maps = METHODS["gradcam"](MeanOfChannel(), "features")(x, target=1)
    # weights: channel 0 gets mean gradient 1/16, channel 1 gets 0 -> map = 2x / 16
    torch.testing.assert_close(maps, 2 * x / 16)


def test_hirescam_is_gradient_times_activation():
    x = torch.arange(16.0).view(1, 1, 4, 4) - 8
    maps = METHODS["hirescam"](MeanOfChannel(), "features")(x, target=1)
    torch.testing.assert_close(maps, 2 * x / 16)  # signed: negative evidence kept


def test_integrated_gradients_exact_for_linear_model():
    weight = torch.randn(1, 1, 4, 4)

    class Linear(nn.Module):
        def forward(self, x):
            s = (x * weight).sum(dim=(1, 2, 3))
            return torch.stack([-s, s], dim=1)

    x = torch.rand(2, 1, 4, 4)
    maps = METHODS["integrated_gradients"](Linear(), n_steps=8)(x, target=1)
    torch.testing.assert_close(maps, x * weight, rtol=1e-4, atol=1e-5)


def test_maps_upsampled_to_input_size():
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=4, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, 2),
    )
    maps = METHODS["gradcam"](model, "0")(torch.rand(3, 1, 32, 32), target=1)
    assert maps.shape == (3, 1, 32, 32)


def test_mirrored_maps_are_mirrored_back_and_averaged():
    from xaiseg.saliency.base import mirrored

    images = torch.arange(8.0).view(1, 1, 2, 4)
    # A method that follows the image (the map is the image): mirroring changes nothing.
    same = mirrored(lambda x, extra: x, images, [], (0, 1))
    torch.testing.assert_close(same, images)
    # A method blind to the image (a column ramp 0 1 2 3): mirrored back, the columns
    # swap, and the mean of 0 1 2 3 and 3 2 1 0 is 1.5 everywhere.
    ramp = torch.arange(4.0).expand(1, 1, 2, 4)
    blind = mirrored(lambda x, extra: ramp, images, [], (1,))
    torch.testing.assert_close(blind, torch.full((1, 1, 2, 4), 1.5))
    # Extra inputs (a ground-truth mask) are mirrored with the image.
    mask = torch.zeros(1, 1, 2, 4)
    mask[..., 0, 3] = 1
    followed = mirrored(lambda x, extra: extra[0], images, [mask], (0, 1))
    torch.testing.assert_close(followed, mask)
    # No axes: the method's map as it is, computed once.
    calls = []
    mirrored(lambda x, extra: calls.append(1) or x, images, [], ())
    assert len(calls) == 1
