"""Classifiers trained apart (other seeds, other options) used as one network.

Its output is the log of the members' mean softmax probability, so whoever reads a
classifier (gates, predictions, deletion checks, ``xaiseg predict``) reads the mean
probability through the usual softmax. Saliency does not explain it as one network:
each member is explained and the maps are averaged (``saliency/members.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ENSEMBLE = "ensemble"  # NetworkSpec.network of an ensemble; options: {"members": [...]}


class Ensemble(nn.Module):
    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([m(images).float().softmax(1) for m in self.members])
        return probabilities.mean(0).clamp_min(torch.finfo(torch.float32).tiny).log()
