"""Is a map faithful to the model at all? Two checks on test images with a lesion.

- Deletion and insertion (Petsiuk et al. 2018): pixels are removed from the image (set
  to ``baseline``) or revealed on a baseline image in the map's order, most salient
  first, in ``steps`` equal shares; the area under the classifier's probability of the
  finding against the share. A faithful map gives a low deletion and a high insertion
  area. Each image's variants go through the network as one batch.
- Model-parameter randomisation (Adebayo et al. 2018): the explained model's blocks are
  re-initialised one after another from the output backwards (cascading) and the map
  recomputed; the Spearman rank correlation with the original map, per block, averaged
  over images, of the signed maps and of their magnitudes. A map whose magnitudes barely
  change once every block is random shows the image more than what the model learnt:
  the method fails the sanity check (Adebayo et al. found this of gradient x input and
  Integrated Gradients, whose magnitudes keep the input's edges). An ensemble's
  members are randomised side by side, the same block of each at every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn

from xaiseg.devices import batches
from xaiseg.models.ensemble import Ensemble


def _order_ranks(maps: torch.Tensor) -> torch.Tensor:
    """(N, 1, *spatial) -> each pixel's rank in its map, 0 the most salient."""
    flat = maps.flatten(1)
    order = flat.argsort(dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(flat.shape[1], device=flat.device)
    ranks.scatter_(1, order, positions.expand_as(order).contiguous())
    return ranks.view_as(maps)


@torch.no_grad()
def deletion_insertion(
    classifier: nn.Module,
    images: torch.Tensor,
    maps: torch.Tensor,
    target: int,
    steps: int = 20,
    baseline: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the deletion and insertion areas (trapezoid over shares 0..1)."""
    classifier.eval()
    shares = torch.linspace(0, 1, steps + 1, device=images.device)
    n_pixels = maps[0].numel()
    deletion, insertion = [], []
    for image, ranks in zip(images, _order_ranks(maps), strict=True):
        # (steps+1, 1, *spatial): True where the pixel is among the first share.
        first = ranks.unsqueeze(0) < (shares * n_pixels).view(-1, *([1] * ranks.ndim))
        empty = torch.full_like(image, baseline)
        removed = torch.where(first, empty, image)
        revealed = torch.where(first, image, empty)
        probs = classifier(torch.cat([removed, revealed])).softmax(1)[:, target]
        deletion.append(float(torch.trapezoid(probs[: steps + 1], shares)))
        insertion.append(float(torch.trapezoid(probs[steps + 1 :], shares)))
    return np.array(deletion), np.array(insertion)


def parameter_blocks(model: nn.Module) -> list[str]:
    """The model's top-level children that hold parameters, output first: the order in
    which the cascading test randomises them (children are registered in forward order
    in the factory's networks)."""
    blocks = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    if len(blocks) == 1:  # one wrapper (a Sequential, an autoencoder): look inside
        inner = dict(model.named_children())[blocks[0]]
        return [f"{blocks[0]}.{n}" for n in parameter_blocks(inner)] or blocks
    return blocks[::-1]


def cascade_steps(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Each step of the cascade: its label and the submodules it randomises. An
    ensemble's step randomises the block at that place in every member (members of one
    architecture: the same block), so that each row says how far into the networks the
    explanation still holds, not which member was lost."""
    if not isinstance(model, Ensemble):
        return [(block, [block]) for block in parameter_blocks(model)]
    blocks = [parameter_blocks(member) for member in model.members]
    return [
        (label, [f"members.{i}.{b[step]}" for i, b in enumerate(blocks) if step < len(b)])
        for step, label in enumerate(max(blocks, key=len))
    ]


def _randomise(module: nn.Module, generator: torch.Generator) -> None:
    for sub in module.modules():
        for param in sub.parameters(recurse=False):
            with torch.no_grad():
                fan_in = param[0].numel() if param.ndim > 1 else param.numel()
                param.copy_(torch.randn(param.shape, generator=generator) / max(1, fan_in) ** 0.5)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant map: no order to agree with
        return 1.0 if np.ptp(a) == np.ptp(b) == 0 else 0.0
    return float(spearmanr(a, b).statistic)


def randomisation_test(
    model: nn.Module,
    explain: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    seed: int = 0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Rank correlation of the map with its original after each cascading step.

    ``explain(model, images)`` returns maps (N, 1, *spatial) of ``model``. Rows: the
    block randomised last (cumulative), the mean Spearman correlation of the signed
    maps and of their absolute values."""

    def maps_of(net: nn.Module) -> np.ndarray:
        parts = [explain(net, b) for b in batches(images, batch_size)]
        return torch.cat(parts).flatten(1).float().cpu().numpy()

    original = maps_of(model)
    net = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for block, modules in cascade_steps(net):
        for name in modules:
            _randomise(net.get_submodule(name), generator)
        changed = maps_of(net)
        signed = [_spearman(a, b) for a, b in zip(original, changed, strict=True)]
        absolute = [_spearman(np.abs(a), np.abs(b)) for a, b in zip(original, changed, strict=True)]
        rows.append({"randomised_through": block, "spearman": float(np.mean(signed)),
                     "spearman_abs": float(np.mean(absolute))})  # fmt: skip
    return pd.DataFrame(rows)


def passes_sanity(cascade: pd.DataFrame, max_spearman: float) -> bool:
    """Once every block is random, the magnitudes' rank correlation is below the bar."""
    return bool(len(cascade)) and abs(float(cascade["spearman_abs"].iloc[-1])) < max_spearman
