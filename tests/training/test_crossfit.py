"""Cross-fitted ensembles: member i trains on every fold but i and stops early on it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app import mixture, train
from app.data.corpus import read_names
from app.data.folds import fold_of
from app.lm.base import load_model
from app.training.crossfit import member_paths
from app.training.promote import run_path
from tests.conftest import TINY_TRAIN_FLAGS

# the ensemble itself: its student (the served lstm recipe) is tests/training/test_student.py
FLAGS = [*(f for f in TINY_TRAIN_FLAGS if f not in ("--members", "1")), "--no-student"]


def train_ensemble(names_file, out, *extra) -> int:
    return train.main(["--data", str(names_file), "--out", str(out), *FLAGS, *extra])


def test_members_hold_out_one_fold_each_and_together_see_every_name(names_file, tmp_path):
    out = tmp_path / "lstm.npz"
    assert train_ensemble(names_file, out, "--members", "3", "--epochs", "2", "--jobs", "2") == 0
    ensemble = load_model(out)
    assert ensemble.kind == "ensemble" and ensemble.family == "lstm"
    assert len(ensemble.components) == 3
    names = read_names(names_file)
    folds = fold_of(names, 3, seed=0)
    assert ensemble.vocab.chars[1:] == sorted(set("".join(names)))   # one vocabulary, all names
    for i, member in enumerate(ensemble.components):
        held_out = {n for n, fold in folds.items() if fold == i}
        assert member.metadata["metrics"]["n_train_names"] == sum(n not in held_out for n in names)
        assert member.metadata["metrics"]["n_val_names"] == sum(n in held_out for n in names)
    metrics = ensemble.metadata["metrics"]
    assert len(metrics["member_val_nll"]) == 3 and np.isfinite(metrics["oof_nll"])
    assert min(metrics["member_val_nll"]) <= metrics["oof_nll"] <= max(metrics["member_val_nll"])


def test_members_trained_side_by_side_equal_members_trained_in_turn(names_file, tmp_path):
    for jobs, name in (("1", "a.npz"), ("2", "b.npz")):
        assert train_ensemble(names_file, tmp_path / name, "--members", "2", "--epochs", "1",
                              "--jobs", jobs) == 0
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    for x, y in zip(a.components, b.components, strict=True):
        for key in x.params:
            np.testing.assert_array_equal(x.params[key], y.params[key])


def test_resume_keeps_finished_members_and_a_worse_ensemble_is_not_served(names_file, tmp_path):
    out = tmp_path / "lstm.npz"
    assert train_ensemble(names_file, out, "--members", "2", "--epochs", "3") == 0
    served = out.read_bytes()
    members = member_paths(run_path(out), 2)
    stamps = [path.stat().st_mtime_ns for path in members]
    assert train_ensemble(names_file, out, "--members", "2", "--epochs", "3", "--resume") == 0
    assert [path.stat().st_mtime_ns for path in members] == stamps   # nothing retrained
    # a fresh, shorter run scores worse out of fold: the served ensemble stays
    assert train_ensemble(names_file, out, "--members", "2", "--epochs", "1") == 0
    assert out.read_bytes() == served


def test_resume_refuses_a_member_file_it_cannot_read_before_training(names_file, tmp_path,
                                                                      capsys):
    out = tmp_path / "lstm.npz"
    assert train_ensemble(names_file, out, "--members", "2", "--epochs", "1") == 0
    first, second = member_paths(run_path(out), 2)
    second.write_bytes(second.read_bytes()[:5000])          # cut by a crash or a full disk
    stamp = first.stat().st_mtime_ns
    assert train_ensemble(names_file, out, "--members", "2", "--epochs", "1", "--resume") == 2
    assert f"--resume: {second}: " in capsys.readouterr().err
    assert first.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("flags, message", [
    (["--members", "0"], "--members must be in [1, 20]"),
    (["--jobs", "0"], "--jobs must be in [1, 64]"),
    (["--model", "markov", "--jobs", "2"], "--jobs does not apply to --model markov"),
])
def test_bad_ensemble_flags_exit_2(names_file, tmp_path, capsys, flags, message):
    assert train_ensemble(names_file, tmp_path / "x.npz", *flags) == 2
    assert message in capsys.readouterr().err


def test_markov_and_mixture_follow_the_same_folds(names_file, tmp_path):
    """The n-gram picks its order on the ensemble's folds and counts every name; the mixture's
    weight is fitted out of fold, so its recorded NLL comes from names no component saw."""
    ensemble, ngram, mezcla = (tmp_path / f"{n}.npz" for n in ("lstm", "markov", "mezcla"))
    # no weight average: over a few tiny steps it would keep the weights near their start
    assert train_ensemble(names_file, ensemble, "--members", "3", "--epochs", "12",
                          "--lr", "0.03", "--ema", "0") == 0
    assert train.main(["--model", "markov", "--members", "3", "--data", str(names_file),
                       "--out", str(ngram)]) == 0
    counted = load_model(ngram)
    assert counted.metadata["metrics"]["n_train_names"] == len(read_names(names_file))
    assert all(h["train_nll"] < h["val_nll"] for h in counted.metadata["history"][1:])
    assert counted.metadata["split"] == load_model(ensemble).metadata["split"]
    # as a user runs it: python -m loads the module twice (as __main__ and as app.mixture)
    done = subprocess.run([sys.executable, "-m", "app.mixture", "--neural", str(ensemble),
                           "--ngram", str(ngram), "--data", str(names_file), "--out", str(mezcla)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    mixed = load_model(mezcla)   # written only when it beats both components out of fold
    recorded = mixed.metadata["metrics"]
    assert recorded["val_nll"] < min(recorded["component_val_nll"].values())
    assert len(mixed.components) == 4 and mixed.weights.sum() == pytest.approx(1.0)
    # an n-gram whose order was chosen on other folds still mixes: the weights are fitted on
    # n-grams counted afresh on the ensemble's folds
    other = tmp_path / "markov2.npz"
    assert train.main(["--model", "markov", "--members", "2", "--data", str(names_file),
                       "--out", str(other)]) == 0
    assert mixture.main(["--neural", str(ensemble), "--ngram", str(other), "--data",
                         str(names_file), "--out", str(tmp_path / "mezcla2.npz")]) == 0
