"""The training CLI: a smoke run, reproducibility, resume, interruption and bad input."""

import json

import numpy as np
import pytest

from app import evaluate, train
from app.data.corpus import DEFAULT_NAMES, read_names
from app.flags import FlagError
from app.lm import checkpoint
from app.lm.base import load_checkpoint, load_model, names_nll
from app.nn import network, recurrent
from app.training import trainer
from app.training.config import resolve_config
from tests.conftest import TINY_TRAIN_FLAGS as TINY
from tests.conftest import make_tiny_model, make_tiny_state_model
from tests.conftest import train_tiny as _train


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_a_few_epochs_lower_the_loss_and_write_a_loadable_checkpoint(names_file, tmp_path, kind):
    out = tmp_path / f"{kind}.npz"
    assert _train(names_file, out, "--model", kind, "--epochs", "4", "--lr", "0.01") == 0
    model = load_model(out)
    history = model.metadata["history"]
    assert history[-1]["train_nll"] < history[0]["train_nll"]
    metrics = model.metadata["metrics"]
    assert metrics["val_nll"] == min(r["val_nll"] for r in history)
    assert metrics["chars_per_second"] > 0
    assert model.metadata["train_config"]["model"] == kind
    assert len(model.metadata["data_sha256"]) == 64


def test_same_seed_same_weights(names_file, tmp_path):
    for name in ("a", "b"):
        assert _train(names_file, tmp_path / f"{name}.npz", "--epochs", "2", "--seed", "3") == 0
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_a_second_core_trains_one_model_to_the_same_weights(names_file, tmp_path, kind,
                                                             monkeypatch):
    """--jobs 2 gives a single model's training step a helper thread: the same numbers."""
    jobs_run = []

    class Helper(recurrent.ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            jobs_run.append(args)
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(recurrent, "ThreadPoolExecutor", Helper)
    for jobs in ("1", "2"):
        assert _train(names_file, tmp_path / f"{jobs}.npz", "--model", kind, "--epochs", "2",
                      "--dropout", "0.2", "--jobs", jobs) == 0
        assert bool(jobs_run) == (jobs == "2")
    one, two = load_model(tmp_path / "1.npz"), load_model(tmp_path / "2.npz")
    for key in one.params:
        np.testing.assert_array_equal(two.params[key], one.params[key])
    assert two.metadata["metrics"]["val_nll"] == one.metadata["metrics"]["val_nll"]


def test_resume_continues_with_the_epoch_counter(names_file, tmp_path):
    out = tmp_path / "lstm.npz"
    assert _train(names_file, out, "--epochs", "2", "--lr", "0.01") == 0
    first = load_model(out).metadata["history"]
    assert _train(names_file, out, "--epochs", "4", "--lr", "0.01", "--resume") == 0
    history = load_model(out).metadata["history"]
    assert [r["epoch"] for r in history][: len(first)] == [r["epoch"] for r in first]
    assert history[-1]["epoch"] > first[-1]["epoch"]


def test_resume_continues_from_the_trained_weights_not_their_average(names_file, tmp_path):
    straight, resumed = tmp_path / "straight.npz", tmp_path / "resumed.npz"
    assert _train(names_file, straight, "--epochs", "3") == 0
    assert _train(names_file, resumed, "--epochs", "2") == 0
    assert _train(names_file, resumed, "--epochs", "3", "--resume") == 0
    a, b = load_model(straight), load_model(resumed)
    assert a.metadata["metrics"]["best_epoch"] == b.metadata["metrics"]["best_epoch"] >= 2
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])


def test_the_saved_weights_are_the_average_and_the_trained_ones_are_kept(names_file, tmp_path):
    averaged, raw = tmp_path / "averaged.npz", tmp_path / "raw.npz"
    assert _train(names_file, averaged, "--epochs", "2") == 0
    assert _train(names_file, raw, "--epochs", "2", "--ema", "0") == 0
    saved = load_checkpoint(averaged)
    trained = load_model(raw).params
    for key, p in trained.items():
        np.testing.assert_array_equal(saved.optimizer_state[trainer.LIVE + key], p)
        assert not np.array_equal(saved.arrays[key], p)
    assert not any(k.startswith(trainer.LIVE) for k in load_checkpoint(raw).optimizer_state)


def test_interrupted_training_keeps_the_old_weights(names_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "lstm.npz"
    assert _train(names_file, out, "--epochs", "1") == 0
    before = out.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(network, "loss_and_grads", interrupted)
    assert _train(names_file, out, "--epochs", "3", "--seed", "9") == 130
    assert out.read_bytes() == before
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/names.txt"], "file not found"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--val-fraction", "0"], "--val-fraction must be in (0, 1), got 0.0"),
    (["--epochs", "0"], "--epochs must be in [1, 10000]"),
    (["--ema", "1"], "--ema must be in [0, 1)"),
    (["--seed", "-1"], "--seed must be in [0, 4294967295], got -1"),
    (["--hidden", "100000"], "--hidden must be in [1, 4096], got 100000"),
    (["--layers", "9"], "--layers must be in [1, 8]"),
    (["--embed", "2000"], "--embed must be in [0, 1024]"),
    (["--lr", "nan"], "--lr must be in (0, 10], got nan"),
    # flags that would shape nothing are refused, as --model markov refuses the neural ones
    (["--cond-embed", "5", "--epochs", "1"], "--cond-embed does not apply without --condition estado"),
    (["--condition", "none", "--cond-embed", "5", "--epochs", "1"], "--cond-embed does not apply"),
    (["--locked-dropout", "--dropout", "0", "--epochs", "1"],
     "--locked-dropout does not apply with --dropout 0"),
    (["--members", "3", "--val-fraction", "0.3"], "--val-fraction does not apply with --members > 1"),
])
def test_bad_input_is_a_message_and_exit_code_2(names_file, tmp_path, capsys, args, message):
    argv = ["--data", str(names_file), "--out", str(tmp_path / "x.npz"), *TINY, *args]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_too_few_names_and_non_utf8_files_exit_2(tmp_path, capsys):
    few = tmp_path / "few.txt"
    few.write_text("Ures\nOpodepe\n", encoding="utf-8")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Abalá\n".encode("latin-1"))
    for path, message in ((few, "too few distinct names"), (latin1, "not UTF-8")):
        assert train.main(["--data", str(path), "--out", str(tmp_path / "x.npz"), "--quiet"]) == 2
        assert message in capsys.readouterr().err


def test_the_ngram_refuses_a_validation_fraction_its_folds_would_ignore(names_file, tmp_path,
                                                                       capsys):
    argv = ["--model", "markov", "--data", str(names_file), "--out", str(tmp_path / "x.npz"),
            "--val-fraction", "0.3"]
    assert train.main(argv) == 2
    assert "--val-fraction does not apply with --members > 1" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["markov", "lstm"])
def test_validation_names_none_of_which_can_be_scored_exit_2(tmp_path, capsys, kind):
    # every name has letters of its own: no held-out name is in the training vocabulary
    letters = "ABCDEFGHIJKLMNOPQRSTUVWX"
    names = tmp_path / "own_letters.txt"
    names.write_text("".join(f"{a}{b.lower()}\n" for a, b in zip(letters[::2], letters[1::2],
                                                                  strict=True)), encoding="utf-8")
    epochs = ["--epochs", "1"] if kind == "lstm" else []
    code = train.main(["--model", kind, "--members", "1", "--data", str(names), *epochs,
                       "--out", str(tmp_path / "x.npz"), "--quiet"])
    assert code == 2 and "no validation name can be scored" in capsys.readouterr().err


@pytest.mark.parametrize("file_name, content", [
    ("held_out.txt", "Tepic\nZzyzx€\n"),
    ("held_out.csv", "cve_ent,estado,cve_mun,municipio\n18,Nayarit,017,Tepic\n18,Nayarit,099,Zzyzx€\n"),
])
def test_evaluate_reports_nll_and_lists_skipped_names(names_file, tmp_path, capsys, file_name,
                                                       content):
    out = tmp_path / "rnn.npz"
    assert _train(names_file, out, "--model", "rnn", "--epochs", "1") == 0
    held_out = tmp_path / file_name
    held_out.write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert evaluate.main(["--model", str(out), "--names", str(held_out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_names"] == 1 and report["n_tokens"] == len("Tepic") + 1
    assert report["skipped"] == {"count": 1, "names": ["Zzyzx€"]}
    assert report["bits_per_char"] == pytest.approx(report["nll_per_char"] / np.log(2))
    assert report["perplexity"] == pytest.approx(np.exp(report["nll_per_char"]))


def test_evaluate_refuses_a_report_with_a_model_or_names(capsys):
    with pytest.raises(SystemExit) as exited:
        evaluate.main(["--report", "--model", "models/lstm.npz"])
    assert exited.value.code == 2 and "omit --model and --names" in capsys.readouterr().err


def test_evaluate_bad_checkpoint_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    assert evaluate.main(["--model", str(bad), "--names", str(DEFAULT_NAMES)]) == 2
    assert "not an npz archive" in capsys.readouterr().err


def test_conditioned_training_records_the_states(tmp_path):
    rows = ["cve_ent,estado,cve_mun,municipio"]
    rows += [f"26,Sonora,{i:03d},{name}" for i, name in enumerate(read_names(DEFAULT_NAMES)[:40])]
    rows += [f"31,Yucatán,{i:03d},{name}" for i, name in enumerate(read_names(DEFAULT_NAMES)[-40:])]
    data = tmp_path / "states.csv"
    data.write_text("\n".join(rows), encoding="utf-8")
    out = tmp_path / "lstm_estado.npz"
    assert train.main(["--data", str(data), "--out", str(out), "--condition", "estado",
                       "--epochs", "1", *TINY]) == 0
    model = load_model(out)
    assert model.conditions == ["Sonora", "Yucatán"]
    assert model.metadata["condition_codes"] == ["26", "31"]
    assert model.metadata["condition_counts"] == [40, 40]
    assert model.params["cond_embed"].shape == (2, 16)


def test_condition_needs_states_in_the_data(names_file, tmp_path, capsys):
    assert _train(names_file, tmp_path / "x.npz", "--condition", "estado") == 2
    assert "needs a CSV with an estado column" in capsys.readouterr().err


def test_final_checkpoint_scores_the_training_names_without_dropout(names_file, tmp_path):
    out = tmp_path / "lstm.npz"
    assert _train(names_file, out, "--epochs", "2", "--dropout", "0.5") == 0
    metrics = load_model(out).metadata["metrics"]
    assert metrics["train_nll"] != metrics["train_loss"]  # eval mode differs from the dropout loss
    assert 0 < metrics["train_nll"] < 5


def test_resume_refuses_a_checkpoint_of_another_kind(names_file, tmp_path, capsys):
    out = tmp_path / "model.npz"
    assert _train(names_file, out, "--model", "rnn", "--epochs", "1") == 0
    assert _train(names_file, out, "--model", "lstm", "--epochs", "2", "--resume") == 2
    assert "--resume continues a rnn run, not lstm" in capsys.readouterr().err


def test_names_too_long_to_learn_are_refused_before_training(tmp_path, capsys):
    data = tmp_path / "huge.txt"
    data.write_text("\n".join(["x" * 10_000] * 200), encoding="utf-8")
    assert train.main(["--data", str(data), "--out", str(tmp_path / "x.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "200 line(s) cannot be used" in err and "Traceback" not in err


def test_evaluate_refuses_a_model_that_gives_nan(tmp_path, capsys):
    model = make_tiny_model("lstm")
    model.params["out.b"][:] = np.nan
    path = tmp_path / "nan.npz"
    checkpoint.save(path, model.checkpoint(model.metadata))
    names = tmp_path / "names.txt"
    names.write_text("Tepic\nTulum\n", encoding="utf-8")
    assert evaluate.main(["--model", str(path), "--names", str(names)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error:")


def test_evaluate_with_no_name_in_the_vocabulary_is_an_error(tmp_path, capsys):
    path = tmp_path / "lstm.npz"
    model = make_tiny_model("lstm")
    checkpoint.save(path, model.checkpoint(model.metadata))
    names = tmp_path / "names.txt"
    names.write_text("Zzyzx€\n", encoding="utf-8")
    assert evaluate.main(["--model", str(path), "--names", str(names)]) == 2
    assert "no name can be scored" in capsys.readouterr().err


def test_the_light_cli_lists_the_kinds_and_optimisers_the_code_has():
    from app.nn import optim
    from app.training import config as train_config
    assert set(train_config.NEURAL_KINDS) == set(network.CELLS)
    assert set(train_config.OPTIMIZER_NAMES) == set(optim.OPTIMIZERS)


def test_evaluate_scores_each_name_under_its_own_state_for_a_conditioned_model(tmp_path, capsys):
    model = make_tiny_state_model("lstm")
    path = tmp_path / "lstm_estado.npz"
    checkpoint.save(path, model.checkpoint(model.metadata))
    names = tmp_path / "names.csv"
    names.write_text("cve_ent,estado,cve_mun,municipio\n20,Oaxaca,001,Tepic\n31,Yucatán,002,Tulum\n"
                     "06,Colima,003,Colima\n", encoding="utf-8")
    assert evaluate.main(["--model", str(path), "--names", str(names)]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = names_nll(model, ["Tepic", "Tulum"], cond=np.array([0, 2]))   # Oaxaca, Yucatán
    assert report["nll_per_char"] == pytest.approx(np.concatenate(expected).mean(), rel=1e-6)
    assert report["skipped"] == {"count": 1, "names": ["Colima"]}   # a state it never learned
    plain = tmp_path / "names.txt"
    plain.write_text("Tepic\nTulum\n", encoding="utf-8")
    assert evaluate.main(["--model", str(path), "--names", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "is conditioned on the state" in err and "estado column" in err and "Traceback" not in err


def test_resuming_a_run_of_another_kind_is_refused_whatever_its_members():
    args = train.build_parser().parse_args(["--model", "lstm", "--resume"])
    resumed = {"model": "rnn", "members": 7, "hidden": 192}   # a cross-fitted RNN ensemble's run
    with pytest.raises(FlagError, match="--resume continues a rnn run, not lstm"):
        resolve_config(args, resumed)
