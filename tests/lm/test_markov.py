"""The n-gram baseline: a proper distribution, equal to a slow dict-based KN, round-trips."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from app import train
from app.data.corpus import Vocabulary, make_batch, read_names, split_names
from app.evaluate import evaluate_names
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError
from app.lm.markov import MarkovLM, _discounts
from tests.conftest import TINY_NAMES


@pytest.fixture
def tiny_markov() -> MarkovLM:
    vocab = Vocabulary.from_names(TINY_NAMES)
    return MarkovLM.fit([vocab.encode(n) for n in TINY_NAMES], 3, vocab,
                        {"metrics": {"val_nll": 2.0}, "ngram_sizes": []})


def all_probs(model: MarkovLM, history: np.ndarray) -> np.ndarray:
    V = len(model.vocab)
    return model.probs(history, np.broadcast_to(np.arange(V), (len(history), V)))


def test_next_char_probabilities_sum_to_one_for_every_context(tiny_markov):
    V = len(tiny_markov.vocab)
    every_context = np.array(list(itertools.product(range(V), repeat=2)))  # seen or not
    p = all_probs(tiny_markov, every_context)
    assert np.all(p > 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def reference_probability(encoded, order, V, discounts, history, w):
    """Interpolated modified Kneser-Ney written the slow, obvious way with dicts."""
    raw = Counter()
    for ids in encoded:
        seq = [0] * (order - 1) + ids + [0]
        for t in range(order - 1, len(seq)):
            for k in range(1, order + 1):
                raw[tuple(seq[t - k + 1:t + 1])] += 1

    def adjusted(g):
        if len(g) == order:
            return raw[g]
        return len({x[0] for x in raw if len(x) == len(g) + 1 and x[1:] == g})

    p = 1.0 / V
    for k in range(1, order + 1):
        ctx = tuple(history[len(history) - (k - 1):]) if k > 1 else ()
        grams = {g: adjusted(g) for g in raw if len(g) == k and g[:-1] == ctx}
        if not grams:
            continue
        D = (0.0, *discounts[k - 1])
        gamma = sum(D[min(c, 3)] for c in grams.values())
        c = grams.get((*ctx, w), 0)
        p = (max(c - D[min(c, 3)], 0.0) + gamma * p) / sum(grams.values())
    return p


def test_probabilities_match_a_slow_reference_implementation():
    names = TINY_NAMES[:8]
    vocab = Vocabulary.from_names(names)
    encoded = [vocab.encode(n) for n in names]
    model = MarkovLM.fit(encoded, 4, vocab)
    rng = np.random.default_rng(0)
    seen = [([0, 0] + ids)[t:t + 3] for ids in encoded for t in range(len(ids))][:12]
    histories = np.array(seen + rng.integers(0, len(vocab), (4, 3)).tolist())
    got = all_probs(model, histories)
    for i, history in enumerate(histories.tolist()):
        for w in range(len(vocab)):
            want = reference_probability(encoded, 4, len(vocab), model.config.discounts, history, w)
            assert got[i, w] == pytest.approx(want, rel=1e-12)
    # the whole-vocabulary path (two searches per context) gives the same numbers
    np.testing.assert_array_equal(model.probs(histories), got)


def test_discounts_follow_chen_goodman():
    counts = np.array([1, 1, 1, 1, 2, 2, 3, 4, 7], dtype=float)  # n1=4, n2=2, n3=1, n4=1; Y=0.5
    assert _discounts(counts) == pytest.approx((0.5, 1.25, 1.0))


def test_stepping_matches_token_nll(tiny_markov):
    names = ["Tulum", "Xalapa", "Acala"]
    names = [n for n in names if not tiny_markov.vocab.unknown(n)]
    batch = make_batch([tiny_markov.vocab.encode(n) for n in names])
    whole = tiny_markov.token_nll(batch)
    state = tiny_markov.initial_state(len(names))
    for t in range(batch.inputs.shape[0]):
        logp, state = tiny_markov.next_logits(batch.inputs[t], state)
        step_nll = -logp[np.arange(len(names)), batch.targets[t]] * batch.mask[t]
        np.testing.assert_allclose(step_nll, whole[t], rtol=1e-5)
    kept = tiny_markov.select(state, np.array([1]))
    np.testing.assert_array_equal(kept, state[[1]])


def test_checkpoint_round_trip(tiny_markov, tmp_path):
    tiny_markov.metadata["ngram_sizes"] = [len(tiny_markov.arrays[f"k{k}.keys"]) for k in (1, 2, 3)]
    path = tmp_path / "markov.npz"
    checkpoint.save(path, tiny_markov.checkpoint(tiny_markov.metadata))
    loaded = load_model(path)
    assert loaded.kind == "markov" and loaded.config == tiny_markov.config
    assert loaded.vocab.chars == tiny_markov.vocab.chars and loaded.n_params == tiny_markov.n_params
    history = np.array([[0, 0], [1, 2], [3, 3]])
    np.testing.assert_array_equal(all_probs(loaded, history), all_probs(tiny_markov, history))

    broken = tiny_markov.checkpoint(tiny_markov.metadata)
    broken.arrays = {**broken.arrays, "k2.counts": broken.arrays["k2.counts"][:-1]}
    checkpoint.save(tmp_path / "bad.npz", broken)
    with pytest.raises(CheckpointError, match="wrong shape for 'k2.counts'"):
        load_model(tmp_path / "bad.npz")


def test_train_cli_picks_the_best_order_on_validation(tmp_path, capsys):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(TINY_NAMES * 2 + ["Zapopan", "Zacatecas", "Zamora"]), "utf-8")
    out = tmp_path / "m.npz"
    assert train.main(["--model", "markov", "--data", str(data), "--out", str(out),
                       "--val-fraction", "0.3", "--seed", "1", "--members", "1"]) == 0
    model = load_model(out)
    history = model.metadata["history"]
    assert [h["order"] for h in history] == list(range(2, 9))
    best = min(history, key=lambda h: h["val_nll"])
    assert model.config.order == best["order"] == model.metadata["metrics"]["best_order"]
    assert "seed 1" in model.metadata["split"]
    val = split_names(read_names(data), 0.3, 1).val
    assert evaluate_names(model, val)["nll_per_char"] == pytest.approx(best["val_nll"])

def test_train_cli_rejects_neural_flags(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert train.main(["--model", "markov", "--hidden", "64", "--out", str(out)]) == 2
    assert "--hidden does not apply" in capsys.readouterr().err
    assert not out.exists()
