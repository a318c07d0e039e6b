"""One training step of each segmenter network, against the block's ``unet``.

A step is forward, Dice + cross-entropy backward and an AdamW update on a batch of
random images and masks (the cost does not depend on what the weights hold), at the
real-data block's size: 128 px, batch 16. ``resnet_unet`` has the block classifier's
encoder (ResNet-18 at half width), trained and frozen (``encoder_lr_scale: 0``).
Median of ``--repeats`` timed steps after one warm-up, one thread unless told.

    .venv/bin/python benchmarks/segmenter_step.py [--channels 1] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch
from saliency_cost import seconds  # the same timing: median after one warm-up

from xaiseg.models import build_segmenter
from xaiseg.train.loop import freeze_encoder
from xaiseg.train.losses import MaskedDiceCELoss

RESNET = {"depth": 18, "widen_factor": 0.5}
NETWORKS = {  # label: network, options, encoder frozen
    "unet": ("unet", {}, False),
    "resnet_unet (resnet18, widen 0.5)": ("resnet_unet", RESNET, False),
    "resnet_unet, encoder frozen": ("resnet_unet", RESNET, True),
}


def step_seconds(name: str, options: dict, frozen: bool, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    network = build_segmenter(name, args.channels, 2, **options)
    if frozen:
        freeze_encoder(network)
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3)  # skips grad-less ones
    loss = MaskedDiceCELoss()
    images = torch.rand(args.batch, args.channels, args.size, args.size)
    masks = (torch.rand(args.batch, 1, args.size, args.size) > 0.9).float()

    def step() -> None:
        optimiser.zero_grad()
        loss(network(images), masks).backward()
        optimiser.step()

    return seconds(step, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = None
    for label, (name, options, frozen) in NETWORKS.items():
        taken = step_seconds(name, options, frozen, args)
        base = base or taken
        print(f"{label}: {taken:.3f} s per step ({taken / base:.1f}x unet)")


if __name__ == "__main__":
    main()
