"""A gated mezcla of two tiny LSTMs and a 3-gram, and two checks, shared by the gate's and the
product's tests."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.corpus import make_batch
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


def first_step_log_probs(model, ids: np.ndarray) -> np.ndarray:
    """(B, V) float64 log P of the token after ``ids``, from the model's initial state."""
    logits = model.next_logits(ids, model.initial_state(len(ids)))[0].astype(np.float64)
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def assert_scores_as_it_steps(model, names=("Tulum", "Acala")) -> None:
    """token_nll of a batch equals the NLL read off stepping the model token by token."""
    batch = make_batch([model.vocab.encode(n) for n in names])
    whole, state = model.token_nll(batch), model.initial_state(len(names))
    rows = list(range(len(names)))
    for t in range(batch.inputs.shape[0]):
        logp, state = model.next_logits(batch.inputs[t], state)
        np.testing.assert_allclose(-logp[rows, batch.targets[t]] * batch.mask[t], whole[t],
                                   rtol=1e-4, atol=1e-5)
