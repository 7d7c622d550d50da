"""The context-dependent mixture weight: it learns whom to trust where, mixes into a proper
distribution, round-trips through a checkpoint, and a broken one is refused at load."""

from __future__ import annotations

import numpy as np
import pytest

from app import mixture, train
from app.generation.sampling import sample_names
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError
from app.lm.gate import FEATURES, Gate, fit_gate
from tests.conftest import train_tiny
from tests.lm.conftest import assert_scores_as_it_steps, first_step_log_probs


def two_kinds_of_context(n: int = 400, V: int = 4):
    """Half the tokens: model a is sure and right, b is flat. The other half: the reverse."""
    rng = np.random.default_rng(0)
    target = rng.integers(0, V, n)
    sure = np.full((n, V), 0.01 / (V - 1))
    sure[np.arange(n), target] = 0.99
    flat = np.full((n, V), 1.0 / V)
    a_knows = np.arange(n) < n // 2
    log_a = np.log(np.where(a_knows[:, None], sure, flat))
    log_b = np.log(np.where(a_knows[:, None], flat, sure))
    return log_a, log_b, target, a_knows


def test_the_gate_trusts_whichever_model_is_sure_there():
    log_a, log_b, target, a_knows = two_kinds_of_context()
    rows = np.arange(len(target))
    scalar = -np.log(0.5 * np.exp(log_a[rows, target]) + 0.5 * np.exp(log_b[rows, target])).mean()
    gate = fit_gate(log_a, log_b, target)
    log_w, _ = gate.log_weights(log_a, log_b)
    assert np.exp(log_w[a_knows]).min() > 0.9 and np.exp(log_w[~a_knows]).max() < 0.1
    gated = -gate.mix(log_a, log_b)[rows, target].mean()
    assert gated < 0.2 < scalar


def test_a_gate_mixes_into_a_distribution_and_a_flat_gate_is_one_weight():
    log_a, log_b, _, _ = two_kinds_of_context(10)
    flat = Gate(np.array([np.log(0.3 / 0.7)] + [0.0] * len(FEATURES)),
                np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    mixed = flat.mix(log_a, log_b)
    np.testing.assert_allclose(np.exp(mixed).sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(mixed), 0.3 * np.exp(log_a) + 0.7 * np.exp(log_b))


@pytest.mark.parametrize("broken, reason", [
    ({"theta": [float("nan")] * (len(FEATURES) + 1)}, "non-finite"),
    ({"scale": [0.0] * len(FEATURES)}, "not positive"),
    ({"features": ["entropy_neural"]}, "other features"),
    ({"mean": [0.0]}, "do not match"),
])
def test_a_broken_gate_is_refused_with_its_reason(broken, reason):
    good = Gate(np.zeros(len(FEATURES) + 1), np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    np.testing.assert_array_equal(Gate.from_dict(good.to_dict()).theta, good.theta)
    with pytest.raises(ValueError, match=reason):
        Gate.from_dict({**good.to_dict(), **broken})


def test_a_gated_mixture_steps_as_its_gate_says_and_scores_the_same_way(gated_mixture):
    members, ngram = gated_mixture.components[:2], gated_mixture.components[2]
    assert gated_mixture.sides.tolist() == [0, 0, 1]
    ids = np.array([0, 3, 5])
    neural = np.logaddexp(*(first_step_log_probs(m, ids) for m in members)) - np.log(2)
    expected = gated_mixture.gate.mix(neural, first_step_log_probs(ngram, ids))
    np.testing.assert_allclose(first_step_log_probs(gated_mixture, ids), expected,
                               rtol=1e-4, atol=1e-5)
    assert_scores_as_it_steps(gated_mixture)


def test_a_gated_mixture_round_trips_samples_and_a_nan_gate_is_refused(gated_mixture, tmp_path):
    path = tmp_path / "mezcla.npz"
    checkpoint.save(path, gated_mixture.checkpoint(gated_mixture.metadata))
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.gate.theta, gated_mixture.gate.theta)
    ids = np.array([0, 4])
    np.testing.assert_array_equal(loaded.next_logits(ids, loaded.initial_state(2))[0],
                                  gated_mixture.next_logits(ids, gated_mixture.initial_state(2))[0])
    result = sample_names(loaded, 5, np.random.default_rng(0), novel=False)
    assert len(result.names) == 5
    saved = checkpoint.load(path)
    saved.metadata["gate"]["theta"][0] = float("nan")
    checkpoint.save(tmp_path / "roto.npz", saved)
    with pytest.raises(CheckpointError, match="gate"):
        load_model(tmp_path / "roto.npz")


def test_the_mixture_cli_fits_one_weight_when_asked(names_file, tmp_path):
    neural, ngram, data = tmp_path / "lstm.npz", tmp_path / "markov.npz", names_file
    assert train_tiny(names_file, neural, "--epochs", "3") == 0
    assert train.main(["--model", "markov", "--data", str(data), "--out", str(ngram),
                       "--members", "1"]) == 0   # the single neural run's split
    for weighting in ("scalar", "gate"):
        out = tmp_path / f"{weighting}.npz"
        assert mixture.main(["--neural", str(neural), "--ngram", str(ngram), "--data", str(data),
                             "--out", str(out), "--weight", weighting]) == 0
        built = load_model(out)
        metrics = built.metadata["metrics"]
        assert metrics["val_nll"] <= metrics["scalar_val_nll"] + 1e-12
        kept_gate = weighting == "gate" and metrics["val_nll"] < metrics["scalar_val_nll"]
        assert (built.gate is not None) == kept_gate
