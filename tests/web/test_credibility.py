"""Credibility words agree with the percentile among real names that /api/score reports."""

from __future__ import annotations

import numpy as np

from app.web.credibility import LABELS, PERCENTILE_BOUNDS, credibility, cutoffs
from app.web.registry import ServedModel


def test_levels_follow_the_percentile_exactly():
    rng = np.random.default_rng(0)
    served = ServedModel("x", None, np.sort(rng.gamma(4.0, 0.4, size=997).round(2)))  # ties too
    cuts = cutoffs(served)
    for nll in np.concatenate([rng.uniform(0, 4, 2000), served.real_nll]):
        percentile = served.percentile(float(nll))
        level = sum(percentile >= bound for bound in PERCENTILE_BOUNDS)
        assert credibility(cuts, float(nll)).level == level
    assert credibility(cuts, 0.0).label == "muy creíble" == LABELS[-1]
    assert credibility(cuts, 99.0).label == "extraño"


def test_a_model_without_real_names_calls_everything_strange():
    assert credibility(cutoffs(ServedModel("x", None, np.array([]))), 1.0).label == "extraño"
