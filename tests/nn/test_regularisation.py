"""The AWD-LSTM regularisers: what each one drops during training, and that evaluation is unaffected."""

import numpy as np
import pytest

from app import train
from app.data.corpus import DEFAULT_NAMES, make_batch, read_names
from app.gradcheck import REGULARISED, TOLERANCE, relative_errors, small_problem
from app.lm.base import load_model
from app.nn import network
from app.nn.network import ModelConfig
from app.nn.recurrent import Workspace

V, H = 9, 16


def _problem(kind="lstm", layers=1, **fields):
    config = ModelConfig(kind=kind, vocab_size=V, hidden=H, embed=6, layers=layers, **fields)
    rng = np.random.default_rng(0)
    params = network.init_params(config, rng, dtype=np.float64)
    batch = make_batch([list(rng.integers(1, V, n)) for n in (5, 7, 3, 6)], np.float64)
    return config, params, batch


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("case", sorted(REGULARISED))
def test_gradients_with_masks_fixed_match_finite_differences(kind, case):
    errors = relative_errors(*small_problem(kind, seed=5, **REGULARISED[case]), mask_seed=1)
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_evaluation_ignores_every_regulariser(kind):
    plain = _problem(kind)
    regularised = _problem(kind, **REGULARISED["awd"])
    for p in (plain, regularised):
        assert network.loss_and_grads(*p, want_grads=False)[0] == pytest.approx(
            network.loss_and_grads(*plain, want_grads=False)[0], rel=1e-12)
    # in training (an rng) the same model gives another loss
    trained = network.loss_and_grads(*regularised, rng=np.random.default_rng(0), want_grads=False)[0]
    assert trained != pytest.approx(network.loss_and_grads(*plain, want_grads=False)[0], rel=1e-6)


def test_weight_drop_zeroes_a_share_of_the_recurrent_gradient_only():
    config, params, batch = _problem(weight_drop=0.5)
    _, grads, _ = network.loss_and_grads(config, params, batch, rng=np.random.default_rng(1))
    D = config.input_size
    recurrent, inputs = grads["layer0.W"][D:], grads["layer0.W"][:D]
    assert 0.4 < np.mean(recurrent == 0.0) < 0.6          # one mask over W[D:] for the batch
    assert np.mean(inputs == 0.0) < 0.05                  # the input rows are never dropped


def test_embedding_dropout_drops_whole_characters_for_the_batch():
    config, params, batch = _problem(embed_dropout=0.5)
    present = np.unique(batch.inputs)
    dropped_rows = []
    for seed in range(5):
        _, grads, _ = network.loss_and_grads(config, params, batch, rng=np.random.default_rng(seed))
        rows = grads["embed"][present]
        zero = np.all(rows == 0.0, axis=1)
        assert np.all(zero | np.all(rows != 0.0, axis=1))    # a character is dropped entirely or not
        dropped_rows.append(zero.sum())
    assert 0 < sum(dropped_rows) < 5 * len(present)
    _, grads, _ = network.loss_and_grads(*_problem(), rng=np.random.default_rng(0))
    assert not np.any(np.all(grads["embed"][present] == 0.0, axis=1))


@pytest.mark.parametrize("locked", [True, False])
def test_locked_dropout_shares_one_mask_across_time_steps(locked):
    x = np.ones((6, 4, 10))
    out, keep = network._dropout(x, 0.5, np.random.default_rng(0), locked, Workspace(), "x")
    same_every_step = all(np.array_equal(out[0], out[t]) for t in range(6))
    assert same_every_step == locked
    assert set(np.unique(out)) == {0.0, 2.0}              # inverted: kept units scaled by 1 / (1 - p)


def test_dropout_masks_drop_the_share_asked_for_with_independent_draws():
    shape = (999, 37)                                     # 36,963 draws: not a multiple of four
    rng = np.random.default_rng(0)
    keep = network._keep_mask(shape, 0.3, rng, Workspace(), "keep", np.dtype(np.float32))
    dropped = (keep == 0.0).ravel()
    assert keep.shape == shape and abs(dropped.mean() - 0.3) < 0.01
    np.testing.assert_allclose(keep.ravel()[~dropped], 1 / 0.7, rtol=1e-4)
    # four 16-bit draws come from each 64-bit word: neighbours must still be independent
    for lag in (1, 2, 3, 4):
        assert abs(np.mean(dropped[:-lag] & dropped[lag:]) - 0.09) < 0.01
    again = network._keep_mask(shape, 0.3, rng, Workspace(), "keep", np.dtype(np.float32))
    assert not np.array_equal(again, keep)                # the generator moved on


def test_rates_outside_the_unit_interval_are_refused():
    for field in ("dropout", "weight_drop", "embed_dropout"):
        with pytest.raises(ValueError, match=field):
            ModelConfig(kind="lstm", vocab_size=V, **{field: 1.0})


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_reused_workspace_gives_the_results_of_fresh_arrays_with_or_without_a_helper(kind, threads):
    config, params, _ = _problem(kind, layers=2, dropout=0.3, weight_drop=0.2)
    rng = np.random.default_rng(2)
    batches = [make_batch([list(rng.integers(1, V, n)) for n in lengths], np.float64)
               for lengths in ((9, 8), (3, 2, 4), (12,), (1, 1))]  # shapes shrink and grow
    work = Workspace(threads=threads)   # bit for bit the same numbers with a helper thread
    for i, batch in enumerate(batches):
        fresh = network.loss_and_grads(config, params, batch, rng=np.random.default_rng(i))
        reused = network.loss_and_grads(config, params, batch, rng=np.random.default_rng(i), work=work)
        assert reused[0] == fresh[0]
        for name, g in fresh[1].items():
            np.testing.assert_array_equal(reused[1][name], g)


@pytest.fixture
def names_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(read_names(DEFAULT_NAMES)[::20]), encoding="utf-8")  # ~120 names
    return path


def test_training_flags_reach_the_saved_model_config(names_file, tmp_path):
    out = tmp_path / "awd.npz"
    assert train.main(["--data", str(names_file), "--out", str(out), "--hidden", "12", "--embed", "6",
                       "--epochs", "2", "--members", "1", "--quiet", "--locked-dropout", "--weight-drop", "0.3",
                       "--embed-dropout", "0.1"]) == 0
    model = load_model(out)
    assert (model.config.locked_dropout, model.config.weight_drop, model.config.embed_dropout) == (
        True, 0.3, 0.1)
    batch = make_batch([[1, 2, 3], [4, 5]])
    np.testing.assert_array_equal(model.token_nll(batch), model.token_nll(batch))  # no masks at eval


@pytest.mark.parametrize("flag, value", [("--weight-drop", "1"), ("--embed-dropout", "-0.1"),
                                         ("--weight-drop", "half")])
def test_a_rate_out_of_range_is_a_usage_error_naming_the_flag(flag, value, capsys):
    try:
        code = train.main(["--model", "lstm", flag, value])
    except SystemExit as exc:                             # argparse: not a number at all
        code = exc.code
    assert code == 2
    assert flag in capsys.readouterr().err
