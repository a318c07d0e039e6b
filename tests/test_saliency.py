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


def test_multiscale_maps_are_resized_back_peak_scaled_and_averaged():
    from xaiseg.saliency.base import multiscale

    # A method that follows the image (left half 1, right half 0), at 1x and 2x: at 2x
    # the bilinear edge (columns 7 and 8 of 16 read 0.75 and 0.25) comes back as the
    # pairs' means 0.875 and 0.125; averaged with 1x: 0.9375 and 0.0625 at the edge.
    images = torch.zeros(1, 1, 2, 8)
    images[..., :4] = 1
    both = multiscale(lambda x, extra: x, images, [], (1.0, 2.0))
    row = torch.tensor([1.0, 1.0, 1.0, 0.9375, 0.0625, 0.0, 0.0, 0.0])
    torch.testing.assert_close(both, row.expand(1, 1, 2, 8))
    # A map whose values grow with the image's size (relevance per pixel does): peak
    # scaling per scale leaves no trace of the size.
    sized = multiscale(lambda x, e: torch.full_like(x, float(x.shape[-1])), images, [], (0.5, 2.0))
    torch.testing.assert_close(sized, torch.ones(1, 1, 2, 8))
    # Extra inputs (a ground-truth mask) are resized with the image (nearest).
    mask = torch.zeros(1, 1, 2, 8)
    mask[..., 0, 5] = 1
    followed = multiscale(lambda x, extra: 3 * extra[0], images, [mask], (2.0,))
    torch.testing.assert_close(followed, mask)
    # No scales: the method's raw map, computed once.
    calls = []
    raw = multiscale(lambda x, extra: calls.append(1) or 5 * x, images, [], ())
    assert len(calls) == 1 and raw.max() == 5


def test_a_classifiers_multiscale_map_at_one_scale_is_its_peak_scaled_map():
    from xaiseg.saliency.base import multiscale

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2),
    )  # fmt: skip
    explain = METHODS["gradcam"](model, "0")
    images = torch.rand(2, 1, 16, 16)
    plain = explain(images, 1)
    once = multiscale(lambda x, e: explain(x, 1), images, [], (1.0,))
    peak = plain.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    torch.testing.assert_close(once, plain / peak)
    # Another scale gives a map at the image's own size.
    assert multiscale(lambda x, e: explain(x, 1), images, [], (1.5,)).shape == (2, 1, 16, 16)
