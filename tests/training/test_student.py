"""The served lstm recipe: ensemble -> n-gram -> mezcla -> a student, promoted by its own rules."""

from __future__ import annotations

import numpy as np
import pytest

from app import mixture, train
from app.lm import checkpoint
from app.lm.base import load_model
from app.training import mixture_fit, student
from app.training.crossfit import member_paths
from app.training.distillation import Draws
from app.training.promote import run_path

TINY = ["--hidden", "12", "--embed", "6", "--batch-size", "16", "--quiet", "--members", "2",
        "--epochs", "2", "--jobs", "1"]


@pytest.fixture
def tiny_student(monkeypatch):
    """The recipe with a student and teacher draws small enough for a test."""
    monkeypatch.setattr(student, "DRAWS", Draws(samples=40, val_samples=100, hard_weight=0.3))
    monkeypatch.setattr(student, "STUDENT_DEFAULTS", {"hidden": 12, "embed": 6, "epochs": 2})


def train_student(names_file, out, *extra) -> int:
    return train.main(["--model", "lstm", "--data", str(names_file), "--out", str(out), *TINY,
                       *extra])


def test_the_lstm_recipe_serves_a_student_and_keeps_its_ensemble(tiny_student, names_file,
                                                                  tmp_path, capsys, monkeypatch):
    out = tmp_path / "lstm.npz"
    built_with, build = [], mixture_fit.build
    monkeypatch.setattr(mixture_fit, "build", lambda *args, **kwargs: (
        built_with.append(kwargs.get("product", True)), build(*args, **kwargs))[1])
    assert train_student(names_file, out) == 0
    served = load_model(out)
    assert served.kind == "lstm" and served.config.hidden == 12
    distilled = served.metadata["distillation"]
    assert distilled["teacher_kind"] == "mezcla" and distilled["hard_weight"] == 0.3
    # on the real names it learns what the teacher says of names it never saw (fewer copies)
    assert distilled["out_of_fold"] is True
    assert np.isfinite(distilled["teacher_val_nll"])
    # the teacher is the gated average without the product term, which would teach copying
    assert built_with == [False]
    metrics = served.metadata["metrics"]   # the recipe's cost, the teacher's included
    assert 0 < metrics["student_seconds"] < metrics["train_seconds"]
    kept = student.teacher_ensemble(out, served)
    assert list((tmp_path / "teachers").iterdir()) == [kept]
    ensemble = load_model(kept)
    assert ensemble.kind == "ensemble" and len(ensemble.components) == 2
    assert not run_path(out).exists()
    # the mezcla is fitted on the ensemble's out-of-fold predictions, not on the student
    ngram = tmp_path / "markov.npz"
    assert train.main(["--model", "markov", "--data", str(names_file), "--out", str(ngram),
                       "--members", "2"]) == 0
    capsys.readouterr()
    assert mixture.main(["--neural", str(out), "--ngram", str(ngram), "--data", str(names_file),
                         "--out", str(tmp_path / "mezcla.npz")]) == 0
    assert "built from its ensemble" in capsys.readouterr().out
    assert [c.kind for c in load_model(tmp_path / "mezcla.npz").components] == ["lstm"] * 2 + ["markov"]
    kept.unlink()   # a student without its ensemble: a message, not a traceback
    assert mixture.main(["--neural", str(out), "--ngram", str(ngram), "--data", str(names_file),
                         "--out", str(tmp_path / "mezcla.npz")]) == 2
    assert "its ensemble cannot be read" in capsys.readouterr().err


def test_a_run_that_does_not_beat_the_served_student_leaves_it(tiny_student, names_file, tmp_path,
                                                               capsys):
    out = tmp_path / "lstm.npz"
    assert train_student(names_file, out) == 0
    served = out.read_bytes()
    assert train_student(names_file, out) == 0   # the same seed: the same student, a tie
    assert "ties this run's" in capsys.readouterr().out
    assert out.read_bytes() == served and run_path(out).exists()


def test_a_student_of_a_worse_teacher_is_not_served(tiny_student, names_file, tmp_path, capsys):
    out = tmp_path / "lstm.npz"
    assert train_student(names_file, out) == 0
    saved = checkpoint.load(out)
    saved.metadata["distillation"]["teacher_val_nll"] = 0.5   # as if its teacher were far better
    checkpoint.save(out, saved)
    served = out.read_bytes()
    assert train_student(names_file, out, "--dropout", "0.3") == 0   # same folds, other teacher
    assert "its teacher scores 0.5000 on held-out names" in capsys.readouterr().out
    assert out.read_bytes() == served
    assert train_student(names_file, out, "--seed", "1") == 0         # other folds
    assert "its teacher was measured on other folds" in capsys.readouterr().out
    assert out.read_bytes() == served
    assert len(list((tmp_path / "teachers").iterdir())) == 1         # the served one's only


def test_a_forced_student_replaces_the_served_one_and_its_ensemble(tiny_student, names_file,
                                                                   tmp_path):
    out = tmp_path / "lstm.npz"
    assert train_student(names_file, out) == 0
    first = student.teacher_ensemble(out, load_model(out))
    assert train_student(names_file, out, "--dropout", "0.3", "--force") == 0
    second = student.teacher_ensemble(out, load_model(out))
    assert second != first and list((tmp_path / "teachers").iterdir()) == [second]


def test_a_served_model_on_other_names_is_kept(tiny_student, names_file, tmp_path, capsys):
    out = tmp_path / "lstm.npz"
    other = tmp_path / "other.txt"
    other.write_text("\n".join(names_file.read_text("utf-8").splitlines()[::2]), "utf-8")
    assert train_student(other, out) == 0
    served = out.read_bytes()
    assert train_student(names_file, out) == 0
    assert "it was built on other data_sha256" in capsys.readouterr().out
    assert out.read_bytes() == served


def test_resume_keeps_the_finished_members_and_never_continues_a_served_student(
        tiny_student, names_file, tmp_path, capsys):
    out = tmp_path / "lstm.npz"
    assert train_student(names_file, out) == 0
    members = member_paths(student.teacher_stages(run_path(out))["ensemble"], 2)
    stamps = [path.stat().st_mtime_ns for path in members]
    assert train_student(names_file, out, "--resume") == 0
    assert [path.stat().st_mtime_ns for path in members] == stamps   # finished: not retrained
    for path in members:
        path.unlink()
    capsys.readouterr()
    assert train_student(names_file, out, "--resume") == 2   # only the served student is left
    err = capsys.readouterr().err
    assert "is a distilled student and no run toward it is left" in err and "Traceback" not in err


@pytest.mark.parametrize("flags, message", [
    (["--members", "1", "--student"], "--student distils an unconditioned LSTM ensemble"),
    (["--model", "rnn", "--student"], "it needs --model lstm"),
])
def test_a_student_needs_an_unconditioned_lstm_ensemble(names_file, tmp_path, capsys, flags,
                                                        message):
    argv = ["--data", str(names_file), "--out", str(tmp_path / "x.npz"), *flags]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
