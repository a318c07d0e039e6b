"""Sweep a healthy-quantile recipe over one stored map of a finished run, by hand:

    python benchmarks/recipe_sweep.py results/lgg40 counterfactual \
        --quantiles 0.95 0.97 0.98 --keep 1 2

Prints the pseudo-mask Dice on tumour images of the train and val splits for each
(quantile, keep-largest) pair: the recipe's own code (``masks.recipe.Recipe``) on the
run's maps, calibrated as the mask stage does on the train split's healthy images.
The test split is never read. Train Dice reads train masks that no stage reads: a
developer's diagnostic over many more patients than val, never a pipeline input.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from xaiseg.data.artifacts import raw_maps
from xaiseg.data.shards import ShardStore
from xaiseg.masks.build import REFERENCE_PIXELS
from xaiseg.masks.normalize import normalize_maps
from xaiseg.masks.recipe import Recipe
from xaiseg.settings import RecipeSettings, RefineStep


def recipe(quantile: float, keep: int, sigma: float, min_size: int) -> Recipe:
    steps = (
        RefineStep("fill_holes"),
        RefineStep("remove_small", {"min_size": min_size}),
        RefineStep("keep_largest", {"n": keep}),
    )
    settings = RecipeSettings(
        name=f"q{quantile}-keep{keep}",
        maps=("map",),
        normalize="none",
        smooth_sigma=sigma,
        rule="healthy_quantile",
        rule_options={"quantile": quantile},
        refine=steps,
    )
    return Recipe(settings)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((pred & truth).sum()) / max(1, int(pred.sum() + truth.sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("map")
    parser.add_argument("--quantiles", type=float, nargs="+", default=[0.95, 0.97, 0.98])
    parser.add_argument("--keep", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--min-size", type=int, default=16)
    args = parser.parse_args()
    store = ShardStore(args.run / "data")
    data = store.load(["image", "mask"])
    images, truth = data["image"].numpy(), data["mask"].numpy()[:, 0] > 0
    raw = raw_maps(ShardStore(args.run / "saliency" / args.map).load(["map", "scale"]))
    maps = normalize_maps(raw, args.sigma, peak=False).numpy()[:, 0]
    split = np.array([s["split"] for s in store.samples])
    finding = np.array([s["label_index"] for s in store.samples]) == len(store.index["classes"]) - 1
    healthy = maps[(split == "train") & ~finding].reshape(-1)
    healthy = healthy[:: max(1, healthy.size // REFERENCE_PIXELS)]
    rows = []
    for quantile, keep in itertools.product(args.quantiles, args.keep):
        rule = recipe(quantile, keep, args.sigma, args.min_size)
        rule.fit(healthy)
        row = {"quantile": quantile, "keep": keep}
        for name in ("train", "val"):
            idx = np.flatnonzero((split == name) & finding & truth.any(axis=(1, 2)))
            scores = [dice(rule(maps[i][None], images[i]) == 1, truth[i]) for i in idx]
            row[f"{name}_dice"] = float(np.mean(scores))
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("val_dice", ascending=False)
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
