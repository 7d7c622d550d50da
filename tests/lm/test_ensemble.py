"""Ensembles: the average of members' distributions, members of one architecture stepped as one."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.corpus import make_batch
from app.generation.sampling import sample_names
from app.lm import checkpoint, stacked
from app.lm.base import load_model
from app.lm.ensemble import EnsembleLM, MixtureLM
from app.lm.markov import MarkovLM
from app.nn.network import log_softmax
from tests.conftest import TINY_NAMES, make_tiny_model, make_tiny_state_model


def read_only(model):
    for p in model.params.values():
        p.flags.writeable = False   # as loaded from a checkpoint: step tables are cached
    return model


def members(kind: str = "lstm", n: int = 3, maker=make_tiny_model):
    return [read_only(maker(kind, seed=seed)) for seed in range(n)]


def mean_probs(models, ids_per_step, cond=None):
    """Each step's average next-character distribution, every model stepped on its own."""
    states = [m.initial_state(len(ids_per_step[0]), cond) for m in models]
    out = []
    for ids in ids_per_step:
        probs = []
        for i, m in enumerate(models):
            logits, states[i] = m.next_logits(ids, states[i])
            probs.append(np.exp(log_softmax(logits.astype(np.float64))))
        out.append(np.mean(probs, axis=0))
    return out


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_stacked_members_step_exactly_as_each_alone(kind):
    models = members(kind)
    ensemble = EnsembleLM(models)
    assert [type(g).__name__ for g in ensemble._groups] == ["Stack"]
    steps = [np.array([0, 0, 0, 0]), np.array([3, 5, 7, 1]), np.array([2, 2, 9, 4])]
    state = ensemble.initial_state(4)
    for ids, expected in zip(steps, mean_probs(models, steps), strict=True):
        logp, state = ensemble.next_logits(ids, state)
        np.testing.assert_allclose(np.exp(logp), expected, rtol=2e-5, atol=1e-7)


def test_dropping_finished_rows_keeps_the_others_on_track():
    models = members("lstm")
    ensemble = EnsembleLM(models)
    state = ensemble.initial_state(3)
    _, state = ensemble.next_logits(np.array([0, 0, 0]), state)
    _, state = ensemble.next_logits(np.array([4, 6, 8]), state)
    state = ensemble.select(state, np.array([0, 2]))
    logp, _ = ensemble.next_logits(np.array([5, 5]), state)
    expected = mean_probs(models, [np.array([0, 0]), np.array([4, 8]), np.array([5, 5])])[-1]
    np.testing.assert_allclose(np.exp(logp), expected, rtol=2e-5, atol=1e-7)


def test_conditioned_members_are_stacked_with_their_state():
    models = members("lstm", maker=make_tiny_state_model)
    ensemble = EnsembleLM(models)
    assert ensemble.conditions == models[0].conditions
    cond = np.array([0, 2])
    steps = [np.array([0, 0]), np.array([3, 4])]
    state = ensemble.initial_state(2, cond)
    for ids, expected in zip(steps, mean_probs(models, steps, cond), strict=True):
        logp, state = ensemble.next_logits(ids, state)
        np.testing.assert_allclose(np.exp(logp), expected, rtol=2e-5, atol=1e-7)


def test_members_of_different_shapes_form_separate_groups():
    small = read_only(make_tiny_model("lstm", seed=0))
    other = read_only(make_tiny_model("rnn", seed=1))
    twin = read_only(make_tiny_model("lstm", seed=2))
    groups = stacked.group([small, other, twin])
    assert [g.size for g in groups] == [2, 1]
    assert stacked.member_order([small, other, twin], groups) == [0, 2, 1]
    ensemble = EnsembleLM([small, other, twin])
    steps = [np.array([0, 0]), np.array([3, 6])]
    state = ensemble.initial_state(2)
    for ids, expected in zip(steps, mean_probs([small, other, twin], steps), strict=True):
        logp, state = ensemble.next_logits(ids, state)
        np.testing.assert_allclose(np.exp(logp), expected, rtol=2e-5, atol=1e-7)


def test_token_nll_is_minus_log_of_the_average_probability():
    models = members("lstm")
    ensemble = EnsembleLM(models)
    batch = make_batch([ensemble.vocab.encode(n) for n in ["Tulum", "Acala", "Ixtlán"]])
    per_member = np.stack([m.token_nll(batch).astype(np.float64) for m in models])
    expected = -np.log(np.exp(-per_member).mean(axis=0)) * batch.mask
    np.testing.assert_allclose(ensemble.token_nll(batch), expected, rtol=1e-6)


def test_a_mixture_of_an_ensemble_flattens_its_members():
    models = members("lstm", n=2)
    ngram = MarkovLM.fit([models[0].vocab.encode(n) for n in TINY_NAMES], 3, models[0].vocab)
    mezcla = MixtureLM([EnsembleLM(models), ngram], [0.6, 0.4])
    assert mezcla.components == [*models, ngram]
    np.testing.assert_allclose(mezcla.weights, [0.3, 0.3, 0.4])


def test_checkpoint_round_trip_and_sampling(tmp_path):
    ensemble = EnsembleLM(members("lstm"), metadata={"metrics": {"val_nll": 2.5}})
    assert ensemble.family == "lstm"
    path = tmp_path / "lstm.npz"
    checkpoint.save(path, ensemble.checkpoint(ensemble.metadata))
    loaded = load_model(path)
    assert loaded.kind == "ensemble" and loaded.family == "lstm" and len(loaded.components) == 3
    assert loaded.n_params == ensemble.n_params
    first = sample_names(loaded, 5, np.random.default_rng(4), temperature=1.0, novel=False)
    again = sample_names(ensemble, 5, np.random.default_rng(4), temperature=1.0, novel=False)
    assert [s.name for s in first.names] == [s.name for s in again.names]
    assert len(first.names) == 5


def test_the_service_describes_an_ensemble_as_its_members_kind_and_how_it_was_made():
    from app.web.registry import DESCRIPTIONS, ServedModel

    served = ServedModel("lstm", EnsembleLM(members("lstm")), np.array([]))
    assert served.description.startswith(DESCRIPTIONS["lstm"])
    assert "Son 3 redes" in served.description
    assert ServedModel("rnn", members("rnn", n=1)[0], np.array([])).description == DESCRIPTIONS["rnn"]
