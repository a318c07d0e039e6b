"""One training step of the block's classifier and U-Net, in torch's default memory
layout against channels-last (NHWC), on the CPU.

Channels-last changes which convolution kernels run and so the float arithmetic: a
network trained so is another draw of networks, not the same one faster. This measures
what it would buy before anyone pays that. A step is forward, cross-entropy (classifier)
or Dice + cross-entropy (U-Net) backward and an AdamW update on random inputs, at
lgg40's sizes (128 px, 3 channels; BUSI's images are grey) and the block's batches: 32
for the classifier (ResNet-18 at half width), 16 for the U-Net. Median of ``--repeats``
timed steps after one warm-up.

    .venv/bin/python benchmarks/memory_format.py [--threads 1] [--repeats 10]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from saliency_cost import seconds  # the same timing: median after one warm-up
from torch import nn

from xaiseg.models import build_segmenter
from xaiseg.models.factory import CLASSIFIERS
from xaiseg.train.losses import MaskedDiceCELoss

SIZE, CHANNELS = 128, 3


def classifier_case(batch: int) -> tuple[nn.Module, torch.Tensor, Callable]:
    network = CLASSIFIERS["resnet18"](CHANNELS, 2, 2, widen_factor=0.5)
    return network, torch.randint(0, 2, (batch,)), nn.functional.cross_entropy


def segmenter_case(batch: int) -> tuple[nn.Module, torch.Tensor, Callable]:
    masks = (torch.rand(batch, 1, SIZE, SIZE) > 0.9).float()
    return build_segmenter("unet", CHANNELS, 2), masks, MaskedDiceCELoss()


def step_seconds(case: Callable, batch: int, channels_last: bool, repeats: int) -> float:
    torch.manual_seed(0)
    network, target, loss = case(batch)
    images = torch.rand(batch, CHANNELS, SIZE, SIZE)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3)

    def step() -> None:
        optimiser.zero_grad()
        loss(network(images), target).backward()
        optimiser.step()

    return seconds(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for label, case, batch in [
        ("classifier (resnet18, widen 0.5)", classifier_case, 32),
        ("segmenter (unet)", segmenter_case, 16),
    ]:
        plain = step_seconds(case, batch, False, args.repeats)
        last = step_seconds(case, batch, True, args.repeats)
        print(
            f"{label}, batch {batch}: {plain:.3f} s per step, channels-last {last:.3f} s"
            f" ({last / plain:.2f}x)"
        )


if __name__ == "__main__":
    main()
