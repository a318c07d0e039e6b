"""Dice + cross-entropy that leaves ``ignore`` pixels out (uncertain pseudo-mask pixels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xaiseg.data.artifacts import IGNORE


class MaskedDiceCELoss(nn.Module):
    """Soft Dice plus cross-entropy over the pixels whose label is not
    ``IGNORE``. Targets are (N, 1, *spatial) with values 0, 1 or ``IGNORE``.

    ``batch=True`` (nnU-Net's "batch Dice") pools the Dice terms over the batch: with
    per-image Dice, every lesion-free image scores its foreground Dice as 0 unless not
    one pixel is predicted, which drives a network on pseudo-masks (half of them empty)
    into predicting nothing at all.
    """

    def __init__(self, smooth: float = 1e-5, batch: bool = True) -> None:
        super().__init__()
        self.smooth, self.batch = smooth, batch

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = target[:, 0].long()
        valid = (labels != IGNORE).to(logits.dtype)
        ce = F.cross_entropy(logits, labels, ignore_index=IGNORE)
        ce = torch.nan_to_num(ce)  # a batch whose every pixel is ignored
        # Both classes, as MONAI's DiceCELoss(include_background=True) computes them.
        prob = logits.softmax(1) * valid.unsqueeze(1)
        onehot = F.one_hot(labels.clamp(max=logits.shape[1] - 1), logits.shape[1])
        truth = onehot.movedim(-1, 1).to(logits.dtype) * valid.unsqueeze(1)
        dims = (0, *range(2, prob.ndim)) if self.batch else tuple(range(2, prob.ndim))
        intersection = (prob * truth).sum(dims)
        denominator = prob.sum(dims) + truth.sum(dims)
        dice = 1 - (2 * intersection + self.smooth) / (denominator + self.smooth)
        return ce + dice.mean()
