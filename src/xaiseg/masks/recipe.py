"""A pseudo-mask recipe, applied to one image:

normalise each map -> combine (mean, max, product; or vote after the rule) -> rule ->
refinement steps -> optional ignore band (and, over the whole split, an optional
``select``: ``masks/select.py``). The result is uint8: 0 background,
1 foreground, 2 (``IGNORE``) uncertain, left out of the segmenter's loss. With a band
``[low, high]`` the rule decides only above it: a pixel less salient than the uncertain
ones is background even where the rule's cut lies lower.
"""

from __future__ import annotations

import numpy as np

from xaiseg.data.artifacts import IGNORE
from xaiseg.errors import XaisegError
from xaiseg.masks import COMBINERS, REFINERS, RULES
from xaiseg.masks.select import score_function
from xaiseg.settings import RecipeSettings

NORMALIZE_CHOICES = ("peak", "none")


class Recipe:
    def __init__(self, settings: RecipeSettings) -> None:
        self.settings = settings
        where = f"recipe {settings.name!r}"
        if settings.rule not in RULES:
            raise XaisegError(f"{where}: unknown rule {settings.rule!r}; choose {sorted(RULES)}")
        if settings.combine not in (*COMBINERS, "vote"):
            raise XaisegError(f"{where}: unknown combine {settings.combine!r}")
        if settings.normalize not in NORMALIZE_CHOICES:
            raise XaisegError(f"{where}: normalize must be one of {NORMALIZE_CHOICES}")
        unknown = [s.step for s in settings.refine if s.step not in REFINERS]
        if unknown:
            raise XaisegError(
                f"{where}: unknown refine step(s) {unknown}; choose {sorted(REFINERS)}"
            )
        if settings.select is not None:
            score_function(settings.select.score, f"{where} select")
        self.rule = RULES[settings.rule](**settings.rule_options)
        self.steps = [REFINERS[s.step](**s.options) for s in settings.refine]

    def combine(self, maps: np.ndarray) -> np.ndarray:
        """Normalised maps (M, *spatial) -> one map (``vote`` combines by the mean)."""
        return COMBINERS.get(self.settings.combine, COMBINERS["mean"])(maps)

    def fit(self, healthy_values: np.ndarray) -> None:
        """Calibrate the rule on combined map values of images without the finding."""
        self.rule.fit(healthy_values)

    def __call__(self, maps: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Normalised maps (M, *spatial) and the image (C, *spatial) -> uint8 mask."""
        return self.mask_and_map(maps, image)[0]

    def mask_and_map(self, maps: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The uint8 mask and the combined map it was cut from (for ``vote``: the share
        of maps whose rule marks each pixel)."""
        if self.settings.combine == "vote":
            votes = np.stack([self.rule(m, image) for m in maps])
            combined = votes.mean(axis=0)
            mask = combined > 0.5
        else:
            combined = self.combine(maps)
            mask = self.rule(combined, image)
        for step in self.steps:
            mask = step(mask, combined, image)
        out = mask.astype(np.uint8)
        band = self.settings.ignore
        if band is not None:
            out[combined < band.low] = 0
            out[(combined >= band.low) & (combined <= band.high)] = IGNORE
        return out, combined
