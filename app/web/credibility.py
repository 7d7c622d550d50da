"""How credible a name sounds to a model, in five Spanish words, from where its score falls
among the real names (``ServedModel.percentile``): "muy creíble" ... "extraño".

The cut-offs are NLL values taken from the model's sorted real-name scores, so a level is
one comparison per cut-off and the same on every page that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.web.registry import ServedModel

# a level holds names whose percentile (share of real names the model finds less likely) is
# at least the level's bound: a real name is "muy creíble" one time in four
PERCENTILE_BOUNDS = (10, 25, 50, 75)
LABELS = ("extraño", "raro", "posible", "creíble", "muy creíble")


@dataclass(frozen=True)
class Credibility:
    level: int      # 0 (extraño) .. 4 (muy creíble)
    label: str


def cutoffs(served: ServedModel) -> list[float]:
    """NLL per char below which a name reaches each level past the first (ascending levels)."""
    real = served.real_nll
    if not len(real):
        return []
    # percentile(nll) >= p  <=>  fewer than (1 - p/100) N real names score at most nll
    index = [min(len(real) - 1, int(len(real) * (1 - p / 100))) for p in PERCENTILE_BOUNDS]
    return [float(real[i]) for i in index]


def credibility(cuts: list[float], nll_per_char: float) -> Credibility:
    level = int(np.sum(np.asarray(cuts) > nll_per_char)) if cuts else 0
    return Credibility(level, LABELS[level])
