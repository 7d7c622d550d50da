"""Analytic gradients of both cells match finite differences, with padding and masking."""

import dataclasses

import numpy as np
import pytest

from app import gradcheck
from app.data.corpus import make_batch
from app.gradcheck import TOLERANCE, relative_errors, small_problem
from app.nn import network


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("embed", [0, 4], ids=["one-hot", "embedding"])
def test_every_parameter_gradient_matches_finite_differences(kind, embed):
    errors = relative_errors(*small_problem(kind, seed=1, embed=embed))
    assert set(errors) >= {"layer0.W", "layer0.b", "layer1.W", "out.W", "out.b"}
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_conditioned_model_gradients_include_the_condition_embedding(kind):
    errors = relative_errors(*small_problem(kind, seed=2, conditions=3))
    assert "cond_embed" in errors
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_soft_target_gradients_match_finite_differences(kind):
    """Distillation's loss: cross-entropy against a teacher's distribution at every step."""
    errors = relative_errors(*gradcheck.with_soft_targets(*small_problem(kind, seed=5)))
    assert max(errors.values()) < TOLERANCE, errors


def test_one_hot_soft_targets_are_the_ordinary_loss():
    config, params, batch = small_problem("lstm", seed=6)
    one_hot = np.eye(config.vocab_size)[batch.targets]                     # (T, B, V)
    hard = network.loss_and_grads(config, params, batch)
    soft = network.loss_and_grads(config, params, dataclasses.replace(batch, soft=one_hot))
    assert soft[0] == pytest.approx(hard[0], rel=1e-12)
    for name in params:
        np.testing.assert_allclose(soft[1][name], hard[1][name], rtol=1e-10, atol=1e-14)


def test_a_wrong_gradient_is_caught(monkeypatch):
    config, params, batch = small_problem("lstm", seed=3)
    real = network.loss_and_grads

    def off_by_a_bit(*args, **kwargs):
        loss, grads, nll = real(*args, **kwargs)
        if grads is not None:
            grads["layer1.W"] = grads["layer1.W"] * 1.001
        return loss, grads, nll

    monkeypatch.setattr(network, "loss_and_grads", off_by_a_bit)
    errors = relative_errors(config, params, batch)
    assert errors["layer1.W"] > TOLERANCE


def test_cli_passes_and_reports_every_parameter(capsys):
    assert gradcheck.main(["--model", "rnn"]) == 0
    out = capsys.readouterr().out
    assert "rnn" in out and "layer0.W" in out and "passed" in out


def test_padding_never_changes_loss_or_gradients():
    config, params, _ = small_problem("lstm", seed=4)
    rng = np.random.default_rng(0)
    names = [list(rng.integers(1, 7, n)) for n in (3, 5)]
    alone = [network.loss_and_grads(config, params, make_batch([ids], dtype=np.float64))
             for ids in names]
    padded = network.loss_and_grads(config, params, make_batch(names + [[1] * 9], np.float64))
    # the third, longer name only adds its own terms: remove it by subtracting its own run
    longest = network.loss_and_grads(config, params, make_batch([[1] * 9], dtype=np.float64))
    assert padded[0] == pytest.approx(alone[0][0] + alone[1][0] + longest[0], rel=1e-12)
    for name in params:
        expected = alone[0][1][name] + alone[1][1][name] + longest[1][name]
        np.testing.assert_allclose(padded[1][name], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_outside_its_range_exits_2_before_any_check(capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        gradcheck.main(["--model", "rnn", "--seed", seed])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and f"--seed must be in [0, 4294967295], got {seed}" in captured.err
    assert captured.out == ""
