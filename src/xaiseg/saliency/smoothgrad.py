"""SmoothGrad (Smilkov et al. 2017) around any registered method: the mean map over
noisy copies of the input. Seeded, so a rerun gives the same maps."""

from dataclasses import dataclass, field
from typing import Any

import torch

from xaiseg.saliency.base import SaliencyMethod


@dataclass(frozen=True)
class SmoothGradOptions:
    base: str = "integrated_gradients"
    base_options: dict[str, Any] = field(default_factory=dict)
    n_samples: int = 8
    noise: float = 0.1  # standard deviation, as a share of each image's value range
    seed: int = 0


class SmoothGrad(SaliencyMethod):
    Options = SmoothGradOptions

    def __init__(self, model, target_layer=None, **options) -> None:
        from xaiseg.saliency import METHODS  # the registry this wrapper belongs to

        super().__init__(model, target_layer, **options)
        base = METHODS[self.options.base]
        self.inner = base(model, target_layer, **self.options.base_options)
        self.generator = torch.Generator().manual_seed(self.options.seed)

    def attribute(self, forward, images, extra):
        span = images.flatten(1).amax(1) - images.flatten(1).amin(1)
        sigma = (self.options.noise * span).view(-1, *([1] * (images.ndim - 1)))
        total = torch.zeros((), device=images.device)
        for _ in range(self.options.n_samples):
            noise = torch.randn(images.shape, generator=self.generator).to(images.device)
            total = total + self.inner.attribute(forward, images + sigma * noise, extra)
        return total / self.options.n_samples
