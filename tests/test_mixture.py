"""Mezcla: a proper distribution between its components, EM finds the best weight, round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from app import mixture, train
from app.data.corpus import DataError, data_sha256, make_batch
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.ensemble import MixtureLM
from app.lm.markov import MarkovLM
from app.training import mixture_fit
from app.training.mixture_fit import fit_weights
from tests.conftest import TINY_NAMES, make_tiny_model


@pytest.fixture
def tiny_mixture() -> MixtureLM:
    neural = make_tiny_model("lstm")
    ngram = MarkovLM.fit([neural.vocab.encode(n) for n in TINY_NAMES], 3, neural.vocab,
                         {"ngram_sizes": []})
    ngram.metadata["ngram_sizes"] = [len(ngram.arrays[f"k{k}.keys"]) for k in (1, 2, 3)]
    return MixtureLM([neural, ngram], [0.3, 0.7], {"metrics": {"val_nll": 2.0}})


def test_next_char_distribution_is_the_weighted_average(tiny_mixture):
    neural, ngram = tiny_mixture.components
    ids = np.array([0, 3, 5])
    state = tiny_mixture.initial_state(3)
    logp, state = tiny_mixture.next_logits(ids, state)
    p_neural = np.exp(neural.next_logits(ids, neural.initial_state(3))[0].astype(np.float64))
    p_neural /= p_neural.sum(axis=1, keepdims=True)
    p_ngram = np.exp(ngram.next_logits(ids, ngram.initial_state(3))[0].astype(np.float64))
    np.testing.assert_allclose(np.exp(logp), 0.3 * p_neural + 0.7 * p_ngram, rtol=1e-5)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-5)
    kept = tiny_mixture.select(state, np.array([2]))
    assert kept[1].shape == (1, 2)


def test_token_nll_matches_stepping(tiny_mixture):
    batch = make_batch([tiny_mixture.vocab.encode(n) for n in ["Tulum", "Acala"]])
    whole = tiny_mixture.token_nll(batch)
    state = tiny_mixture.initial_state(2)
    for t in range(batch.inputs.shape[0]):
        logp, state = tiny_mixture.next_logits(batch.inputs[t], state)
        np.testing.assert_allclose(-logp[[0, 1], batch.targets[t]] * batch.mask[t], whole[t],
                                   rtol=1e-4)


def test_em_weights_beat_every_weight_on_a_grid():
    rng = np.random.default_rng(3)
    probs = rng.uniform(0.01, 1.0, size=(400, 2)) ** [1.0, 2.0]
    w = fit_weights(probs)
    assert w.sum() == pytest.approx(1.0)
    best = np.log(probs @ w).sum()
    for a in np.linspace(0, 1, 101):
        assert best >= np.log(probs @ [a, 1 - a]).sum() - 1e-9
    # a component that is never worse takes all the weight
    assert fit_weights(np.array([[0.5, 0.1], [0.4, 0.4]]))[0] == pytest.approx(1.0, abs=1e-4)


def test_checkpoint_round_trip(tiny_mixture, tmp_path):
    path = tmp_path / "mezcla.npz"
    checkpoint.save(path, tiny_mixture.checkpoint(tiny_mixture.metadata))
    loaded = load_model(path)
    assert loaded.kind == "mezcla" and [c.kind for c in loaded.components] == ["lstm", "markov"]
    np.testing.assert_allclose(loaded.weights, [0.3, 0.7])
    assert loaded.n_params == tiny_mixture.n_params
    batch = make_batch([tiny_mixture.vocab.encode(n) for n in TINY_NAMES[:5]])
    np.testing.assert_allclose(loaded.token_nll(batch), tiny_mixture.token_nll(batch), rtol=1e-6)


def test_build_refuses_components_from_different_data(tiny_mixture):
    neural, ngram = tiny_mixture.components
    neural.metadata.update(data_sha256="a" * 64, split="s")
    ngram.metadata.update(data_sha256="b" * 64, split="s")
    with pytest.raises(DataError, match="differ in data_sha256"):
        mixture_fit.build(neural, ngram)


def test_build_refuses_single_models_validated_on_different_names(tiny_mixture):
    neural, ngram = tiny_mixture.components
    neural.metadata.update(data_sha256="a" * 64, split="one", train_config={})
    ngram.metadata.update(data_sha256="a" * 64, split="another")
    with pytest.raises(DataError, match="differ in split"):
        mixture_fit.build(neural, ngram)


def test_build_tunes_the_weight_on_validation(tiny_mixture, tmp_path):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(TINY_NAMES), "utf-8")
    neural, ngram = tiny_mixture.components
    for component in (neural, ngram):
        component.metadata.update(
            data_sha256=data_sha256(TINY_NAMES), split="same", train_config={
                "val_fraction": 0.3, "seed": 0}, metrics={"train_seconds": 1.0})
    built, summary = mixture_fit.build(neural, ngram, data, log=lambda _: None)
    curve = [point["val_nll"] for point in built.metadata["history"]]
    assert summary["val_nll"] <= min(curve) + 1e-9
    assert curve[0] == pytest.approx(summary["component_val_nll"]["markov"])   # weight 0
    assert curve[-1] == pytest.approx(summary["component_val_nll"]["lstm"], rel=1e-5)
    assert built.weights[0] == pytest.approx(summary["weight"])
    assert built.metadata["metrics"]["train_seconds"] >= 2.0


@pytest.fixture
def ngram_file(names_file, tmp_path):
    path = tmp_path / "markov.npz"
    assert train.main(["--model", "markov", "--data", str(names_file), "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("neural, ngram, message", [
    ("markov", "markov", "--neural {markov} is of kind 'markov'; --neural takes an lstm or rnn"),
    ("lstm", "lstm", "--ngram {lstm} is of kind 'lstm'; --ngram takes an n-gram"),
    ("lstm_estado", "markov", "--neural {lstm_estado} is conditioned on the state"),
])
def test_the_cli_refuses_components_of_the_wrong_kind_by_flag(
        tiny_state_models_folder, ngram_file, tmp_path, capsys, neural, ngram, message):
    paths = {"markov": ngram_file, **{name: tiny_state_models_folder / f"{name}.npz"
                                      for name in ("lstm", "lstm_estado")}}
    out = tmp_path / "mezcla.npz"
    code = mixture.main(["--neural", str(paths[neural]), "--ngram", str(paths[ngram]),
                         "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message.format(**paths) in err and "Traceback" not in err
    assert not out.exists()


def test_no_product_with_one_scalar_weight_is_refused_as_it_would_do_nothing(capsys):
    with pytest.raises(SystemExit) as exit_:
        mixture.main(["--neural", "a.npz", "--ngram", "b.npz", "--weight", "scalar",
                      "--no-product"])
    assert exit_.value.code == 2
    assert "--no-product does nothing with --weight scalar" in capsys.readouterr().err
