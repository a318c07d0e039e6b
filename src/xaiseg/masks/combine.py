"""How a recipe's normalised maps (M, *spatial) become one map; ``vote`` is done by the
recipe itself (each map thresholded by the rule, then a majority)."""

import numpy as np

COMBINERS = {
    "mean": lambda maps: maps.mean(axis=0),
    "max": lambda maps: maps.max(axis=0),
    # Geometric mean: a pixel counts only where every map agrees; stays in [0, 1].
    "product": lambda maps: np.prod(maps, axis=0) ** (1.0 / len(maps)),
}
COMBINE_CHOICES = (*COMBINERS, "vote")
