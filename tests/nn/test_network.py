"""One step at a time (sampling, with its precomputed tables) equals scoring the whole name."""

import numpy as np
import pytest

from app.data.corpus import Vocabulary, make_batch
from app.lm.neural import NeuralLM
from app.nn import network
from app.nn.network import ModelConfig
from tests.conftest import TINY_NAMES


@pytest.mark.parametrize("kind, layers, embed, conditions", [
    ("lstm", 1, 8, 0),
    ("lstm", 2, 0, 0),      # one-hot input: the table is W's input rows themselves
    ("rnn", 2, 8, 0),
    ("lstm", 2, 8, 3),      # the condition's term comes from its own table
    ("rnn", 1, 0, 3),
])
def test_stepping_gives_the_logits_of_the_whole_sequence(kind, layers, embed, conditions):
    vocab = Vocabulary.from_names(TINY_NAMES)
    config = ModelConfig(kind=kind, vocab_size=len(vocab), hidden=7, layers=layers, embed=embed,
                         conditions=conditions, cond_embed=4 if conditions else 0)
    rng = np.random.default_rng(3)
    params = {k: p.astype(np.float64) + rng.normal(0, 0.1, p.shape)     # biases not all zero
              for k, p in network.init_params(config, rng).items()}
    model = NeuralLM(config, params, vocab)
    names = ["Tepic", "Ahome", "Ñuu Savi"]
    cond = np.array([2, 0, 1]) if conditions else None
    batch = make_batch([vocab.encode(n) for n in names], cond=cond)
    whole = model.token_nll(batch)                                      # (T, B)

    state = model.initial_state(len(names), cond)
    for t, (ids, targets) in enumerate(zip(batch.inputs, batch.targets, strict=True)):
        logits, state = model.next_logits(ids, state)
        nll = -network.log_softmax(logits)[np.arange(len(names)), targets] * batch.mask[t]
        np.testing.assert_allclose(nll, whole[t], rtol=1e-10, atol=1e-12)


def test_weights_trained_in_place_are_used_by_the_next_batch():
    vocab = Vocabulary.from_names(TINY_NAMES)
    config = ModelConfig(kind="lstm", vocab_size=len(vocab), hidden=7, embed=4)
    model = NeuralLM(config, network.init_params(config, np.random.default_rng(0)), vocab)
    ids = np.array([vocab.encode("T")[0]])
    before, _ = model.next_logits(ids, model.initial_state(1))
    model.params["embed"] += 1.0          # what an optimiser step does
    after, _ = model.next_logits(ids, model.initial_state(1))
    assert not np.allclose(before, after)
