"""A gated mezcla of two tiny LSTMs and a 3-gram, shared by the gate's and the product's tests."""

from __future__ import annotations

import numpy as np
import pytest

from app.lm.ensemble import EnsembleLM, MixtureLM
from app.lm.gate import FEATURES, Gate
from app.lm.markov import MarkovLM
from tests.conftest import TINY_NAMES, make_tiny_model


@pytest.fixture
def gated_mixture() -> MixtureLM:
    members = [make_tiny_model("lstm", seed=s) for s in (0, 1)]
    vocab = members[0].vocab
    ngram = MarkovLM.fit([vocab.encode(n) for n in TINY_NAMES], 3, vocab)
    ngram.metadata["ngram_sizes"] = [len(ngram.arrays[f"k{k}.keys"]) for k in (1, 2, 3)]
    rng = np.random.default_rng(5)
    gate = Gate(rng.normal(size=len(FEATURES) + 1), rng.normal(size=len(FEATURES)),
                rng.uniform(0.5, 2.0, len(FEATURES)))
    return MixtureLM([EnsembleLM(members), ngram], [0.4, 0.6], {"metrics": {}}, gate=gate)
