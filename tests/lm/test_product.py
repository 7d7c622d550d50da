"""The mezcla's product term: a proper distribution that is the formula it claims, fitted only when
it helps, carried through stepping, scoring and checkpoints, and refused at load when broken."""

from __future__ import annotations

import numpy as np
import pytest

from app import mixture, train
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError
from app.lm.ensemble import MixtureLM
from app.lm.product import Product
from app.training.mixture_fit import fit_product
from tests.conftest import train_tiny
from tests.lm.conftest import assert_scores_as_it_steps, first_step_log_probs


def random_log_probs(rng, n: int, V: int) -> np.ndarray:
    logits = rng.normal(scale=2.0, size=(n, V))
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def test_the_product_term_is_the_formula_and_a_distribution():
    rng = np.random.default_rng(0)
    log_a, log_b, log_gated = (random_log_probs(rng, 6, 5) for _ in range(3))
    term = Product(weight=0.4, sharpness=1.2, share=0.3)
    product = (np.exp(log_a) ** 0.4 * np.exp(log_b) ** 0.6) ** 1.2
    product /= product.sum(axis=1, keepdims=True)
    mixed = np.exp(term.mix(log_gated, log_a, log_b))
    np.testing.assert_allclose(mixed, 0.7 * np.exp(log_gated) + 0.3 * product, rtol=1e-10)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    np.testing.assert_array_equal(Product(0.4, 1.2, 0.0).mix(log_gated, log_a, log_b), log_gated)


def test_fit_product_finds_the_product_when_it_is_the_truth_and_none_when_it_is_not():
    rng = np.random.default_rng(1)
    n, V = 3000, 6
    log_a, log_b = random_log_probs(rng, n, V), random_log_probs(rng, n, V)
    truth = Product(0.5, 1.0, 0.0).log_product(log_a, log_b)
    target = np.array([rng.choice(V, p=np.exp(row)) for row in truth])
    log_gated = np.logaddexp(np.log(0.5) + log_a, np.log(0.5) + log_b)
    rows = np.arange(n)
    term, nll = fit_product(log_gated, log_a, log_b, target)
    assert term.share > 0.5 and nll < -log_gated[rows, target].mean()
    assert nll == pytest.approx(-term.mix(log_gated, log_a, log_b)[rows, target].mean())
    # tokens drawn from the gated average itself: a product can only add noise
    target = np.array([rng.choice(V, p=np.exp(row)) for row in log_gated])
    term, nll = fit_product(log_gated, log_a, log_b, target)
    assert term.share < 0.1 and nll <= -log_gated[rows, target].mean()


@pytest.mark.parametrize("values", [(1.5, 1.0, 0.5), (0.5, 0.0, 0.5), (0.5, 1.0, 1.0),
                                    (float("nan"), 1.0, 0.5)])
def test_an_out_of_range_product_is_refused(values):
    with pytest.raises(ValueError, match="product term"):
        Product(*values)


def test_a_mixture_with_a_product_steps_scores_and_round_trips(gated_mixture, tmp_path):
    term = Product(0.4, 1.1, 0.6)
    mezcla = MixtureLM(gated_mixture.components, gated_mixture.weights, {"metrics": {}},
                       gate=gated_mixture.gate, sides=gated_mixture.sides, product=term)
    ids = np.array([0, 3, 5])
    members, ngram = mezcla.components[:2], mezcla.components[2]
    neural = np.logaddexp(*(first_step_log_probs(m, ids) for m in members)) - np.log(2)
    log_ngram = first_step_log_probs(ngram, ids)
    expected = term.mix(mezcla.gate.mix(neural, log_ngram), neural, log_ngram)
    got, _ = mezcla.next_logits(ids, mezcla.initial_state(3))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, gated_mixture.next_logits(ids, gated_mixture.initial_state(3))[0])
    assert_scores_as_it_steps(mezcla)
    path = tmp_path / "mezcla.npz"
    checkpoint.save(path, mezcla.checkpoint(mezcla.metadata))
    loaded = load_model(path)
    assert loaded.product == term and loaded.n_params == gated_mixture.n_params + 3
    np.testing.assert_array_equal(loaded.next_logits(ids, loaded.initial_state(3))[0], got)
    saved = checkpoint.load(path)
    saved.metadata["product"]["share"] = 1.5
    checkpoint.save(tmp_path / "roto.npz", saved)
    with pytest.raises(CheckpointError, match="product term"):
        load_model(tmp_path / "roto.npz")


def test_a_product_needs_a_gate(gated_mixture):
    with pytest.raises(ValueError, match="gated mixture"):
        MixtureLM(gated_mixture.components, gated_mixture.weights, product=Product(0.5, 1.0, 0.5))


def test_the_mixture_cli_adds_the_product_only_when_asked_and_when_it_helps(names_file, tmp_path):
    neural, ngram, data = tmp_path / "lstm.npz", tmp_path / "markov.npz", names_file
    assert train_tiny(names_file, neural, "--epochs", "3") == 0
    assert train.main(["--model", "markov", "--data", str(data), "--out", str(ngram),
                       "--members", "1"]) == 0   # the single neural run's split
    for flags in ([], ["--no-product"]):
        out = tmp_path / f"mezcla{len(flags)}.npz"
        assert mixture.main(["--neural", str(neural), "--ngram", str(ngram), "--data", str(data),
                             "--out", str(out), *flags]) == 0
        built = load_model(out)
        metrics = built.metadata["metrics"]
        if flags or built.gate is None:
            assert built.product is None
        else:   # kept only if it beat the gated average on the same names
            assert (built.product is not None) == (metrics["val_nll"] < metrics["gated_val_nll"])
            assert metrics["val_nll"] <= metrics["gated_val_nll"]
