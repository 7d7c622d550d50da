"""Distillation: the teacher's distributions, the student's data and its early stopping, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from app import cv, distill, train
from app.data.corpus import DataError, make_batch, read_names
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.ensemble import MixtureLM
from app.training import distillation, promote
from app.training.distillation import Draws

TINY_STUDENT = ["--samples", "60", "--val-samples", "120", "--hidden", "8", "--embed", "4",
                "--epochs", "2", "--quiet"]


@pytest.fixture
def teacher_path(names_file, tmp_path):
    """An n-gram counted on names_file: a teacher with a proper checkpoint, built in a blink."""
    path = tmp_path / "markov.npz"
    assert train.main(["--model", "markov", "--data", str(names_file), "--out", str(path)]) == 0
    return path


def test_teacher_distributions_score_each_name_as_the_teacher_does(teacher_path, names_file):
    teacher = load_model(teacher_path)
    names = read_names(names_file)[:40]
    encoded = [teacher.vocab.encode(n) for n in names]
    soft = distillation.teacher_distributions(teacher, encoded)
    nll = teacher.token_nll(make_batch(encoded))                      # (T, B)
    for b, (ids, probs) in enumerate(zip(encoded, soft, strict=True)):
        assert probs.shape == (len(ids) + 1, len(teacher.vocab))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        picked = probs[np.arange(len(ids) + 1), [*ids, 0]]           # the end token last
        np.testing.assert_allclose(-np.log(picked), nll[: len(ids) + 1, b], rtol=1e-4)


def test_hard_weight_mixes_in_the_written_character():
    soft = [np.full((3, 4), 0.25, np.float32)]
    mixed = distillation.with_hard_targets(soft, [[2, 1]], 0.4)[0]
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    np.testing.assert_allclose(mixed[[0, 1, 2], [2, 1, 0]], 0.6 * 0.25 + 0.4)
    assert distillation.with_hard_targets(soft, [[2, 1]], 0.0) is soft


def test_validation_names_are_new_to_both_teacher_and_student(teacher_path, names_file):
    teacher = load_model(teacher_path)
    names = read_names(names_file)
    train_set, val, summary = distillation.student_data(teacher, names, Draws(200, 300), seed=0,
                                                        log=lambda _: None)
    decode = teacher.vocab.decode
    trained = {decode(ids) for ids in train_set.encoded}
    validated = [decode(ids) for ids in val.encoded]
    assert set(names) <= trained and validated
    assert not set(validated) & trained
    assert summary["samples"] + summary["real_names"] == len(train_set.encoded)


def test_student_learns_the_teacher_and_records_how(teacher_path, names_file, tmp_path, capsys):
    out = tmp_path / "alumno.npz"
    assert distill.main(["--teacher", str(teacher_path), "--data", str(names_file),
                         "--out", str(out), *TINY_STUDENT]) == 0
    student = load_model(out)
    meta = student.metadata
    assert student.kind == "lstm" and student.config.hidden == 8
    assert meta["distillation"]["teacher_kind"] == "markov"
    assert meta["distillation"]["samples"] > 0 and meta["metrics"]["n_val_names"] > 0
    history = [h["val_nll"] for h in meta["history"]]
    assert len(history) == 2 and history[1] < history[0]     # closer to the teacher each epoch
    assert "cross-entropy to its teacher" in capsys.readouterr().out


def test_same_seed_same_student(teacher_path, names_file, tmp_path):
    paths = [tmp_path / f"a{i}.npz" for i in range(2)]
    for path in paths:
        assert distill.main(["--teacher", str(teacher_path), "--data", str(names_file),
                             "--out", str(path), *TINY_STUDENT, "--epochs", "1"]) == 0
    first, second = (checkpoint.load(p).arrays for p in paths)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.parametrize(("flags", "message"), [
    (["--samples", "-1"], "--samples must be in [0, 1000000]"),
    (["--temperature", "nan"], "--temperature must be in"),
    (["--hard-weight", "1.5"], "--hard-weight must be in [0.0, 1.0]"),
    (["--hidden", "0"], "--hidden must be in"),
    (["--val-samples", "10"], "--val-samples must be in [100, 100000]"),
])
def test_bad_flags_are_refused_before_any_work(flags, message, teacher_path, tmp_path, capsys):
    out = tmp_path / "sub" / "alumno.npz"
    code = distill.main(["--teacher", str(teacher_path), "--out", str(out), *flags])
    assert code == 2 and message in capsys.readouterr().err
    assert not out.parent.exists()


def test_a_teacher_of_other_names_is_refused(teacher_path, tmp_path, capsys):
    other = tmp_path / "other.txt"
    other.write_text("Tepic\nColima\nTulum\n", encoding="utf-8")
    code = distill.main(["--teacher", str(teacher_path), "--data", str(other),
                         "--out", str(tmp_path / "a.npz"), *TINY_STUDENT])
    assert code == 2 and "not the names the teacher" in capsys.readouterr().err
    missing = distill.main(["--teacher", str(tmp_path / "none.npz"), "--out", str(tmp_path / "a.npz")])
    assert missing == 2 and "no such file" in capsys.readouterr().err


def test_out_of_fold_needs_a_cross_fitted_mezcla_and_says_so_before_sampling(
        teacher_path, names_file, tmp_path, capsys):
    code = distill.main(["--teacher", str(teacher_path), "--data", str(names_file),
                         "--out", str(tmp_path / "a.npz"), "--out-of-fold", *TINY_STUDENT])
    err = capsys.readouterr().err
    assert code == 2 and "need a mezcla of a cross-fitted ensemble" in err and "'markov'" in err
    assert not list(tmp_path.glob("a*"))


def test_out_of_fold_is_the_default_whenever_the_teacher_has_folds(cross_fitted_mezcla,
                                                                   teacher_path):
    ngram = load_model(teacher_path)
    assert distillation.resolve_draws(Draws(), cross_fitted_mezcla).out_of_fold is True
    assert distillation.resolve_draws(Draws(), ngram).out_of_fold is False
    assert distillation.resolve_draws(Draws(out_of_fold=False), cross_fitted_mezcla).out_of_fold is False
    with pytest.raises(DataError, match="cross-fitted"):
        distillation.resolve_draws(Draws(out_of_fold=True), ngram)
    parse = distill.build_parser().parse_args
    base = ["--teacher", str(teacher_path), "--out", "a.npz"]
    assert [parse([*base, *flag]).out_of_fold for flag in ([], ["--out-of-fold"],
                                                          ["--no-out-of-fold"])] == [None, True, False]


def test_cv_judges_each_fold_student_on_names_its_teacher_never_saw(names_file, tmp_path):
    runs = tmp_path / "runs"
    kwargs = dict(train_flags=[], jobs=2, runs_dir=runs, log=lambda _: None)
    cv.run(["markov"], names_file, 2, 0, label="teachers", **kwargs)
    summary = cv.run(["alumno"], names_file, 2, 0, label="students", teacher="markov",
                     teachers="teachers", distill_flags=TINY_STUDENT, **kwargs)
    folds = summary["models"]["alumno"]["folds"]
    assert len(folds) == 2 and all(1.0 < f["nll"] < 5.0 for f in folds)
    for i in (1, 2):
        student = load_model(runs / "students" / f"fold{i}" / "alumno.npz").metadata
        assert student["distillation"]["teacher"] == str(runs / "teachers" / f"fold{i}" / "markov.npz")
    assert summary["teacher"] == "markov" and "--samples 60" in summary["distill_flags"]
    with pytest.raises(cv.DataError, match="no teacher"):
        cv.run(["alumno"], names_file, 2, 0, label="orphans", teacher="lstm",
               teachers="teachers", distill_flags=TINY_STUDENT, **kwargs)


def test_cv_trains_the_teacher_first_when_none_is_given():
    assert cv.stages(["alumno"], "mezcla", own_teachers=True) == [
        ["lstm", "markov"], ["mezcla"], ["alumno"]]
    assert cv.stages(["alumno", "markov"], "lstm", own_teachers=False) == [["markov"], ["alumno"]]


def test_student_defaults_are_the_measured_recipe_and_flags_win(teacher_path, tmp_path):
    base = ["--teacher", str(teacher_path), "--out", str(tmp_path / "a.npz")]
    args = distill.build_parser().parse_args(base)
    cfg = distill.check_args(args)
    assert (cfg.hidden, cfg.dropout, cfg.epochs, args.samples) == (192, 0.1, 30, 10_000)
    assert distill.check_args(distill.build_parser().parse_args([*base, "--hidden", "32"])).hidden == 32


@pytest.fixture
def cross_fitted_mezcla(names_file, tmp_path):
    """A mezcla of a tiny 2-member cross-fitted ensemble and an n-gram on the same folds."""
    neural, ngram = tmp_path / "ensemble.npz", tmp_path / "ngram.npz"
    assert train.main(["--data", str(names_file), "--out", str(neural), "--members", "2",
                       "--no-student", "--hidden", "12", "--embed", "6", "--epochs", "2",
                       "--jobs", "1", "--quiet"]) == 0
    assert train.main(["--model", "markov", "--data", str(names_file), "--out", str(ngram),
                       "--members", "2"]) == 0
    ensemble = load_model(neural)
    return MixtureLM([ensemble, load_model(ngram)], [0.5, 0.5],
                     {"train_config": ensemble.metadata["train_config"]})


def test_out_of_fold_targets_are_what_the_teacher_says_of_names_it_never_saw(cross_fitted_mezcla,
                                                                               names_file):
    names = read_names(names_file)
    vocab = cross_fitted_mezcla.vocab
    by_name = distillation.out_of_fold_distributions(cross_fitted_mezcla, names)
    assert set(by_name) == set(names)
    in_fold = distillation.teacher_distributions(cross_fitted_mezcla,
                                                 [vocab.encode(n) for n in by_name])

    def nll(soft: list, name_order) -> float:   # of the written characters, per name
        return float(np.mean([-np.log(p[np.arange(len(n) + 1), [*vocab.encode(n), 0]]).mean()
                              for p, n in zip(soft, name_order, strict=True)]))

    for probs in by_name.values():
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # the n-gram counted every name, so the whole teacher finds the real names far likelier
    assert nll(list(by_name.values()), by_name) > nll(in_fold, by_name) + 0.2


def test_dropped_copies_leave_no_real_name_among_the_samples(cross_fitted_mezcla, names_file):
    names = read_names(names_file)
    train_set, _, summary = distillation.student_data(
        cross_fitted_mezcla, names, Draws(300, 100, temperature=0.3, drop_copies=True), seed=0, log=lambda _: None)
    decode = cross_fitted_mezcla.vocab.decode
    samples = [decode(ids) for ids in train_set.encoded[len(names):]]
    assert summary["samples_real"] > 0 and not set(samples) & set(names)
    assert len(samples) == summary["samples"]


def test_help_shows_the_example_command_as_it_is_typed(capsys):
    with pytest.raises(SystemExit):
        distill.build_parser().parse_args(["--help"])
    assert "--data data/municipios.txt \\\n        --out models/alumno.npz" in capsys.readouterr().out


def test_a_student_replaces_out_only_when_it_is_closer_to_its_teacher(teacher_path, names_file,
                                                                      tmp_path, capsys):
    """The rules of the served lstm's student (app.training.student), not a plain overwrite."""
    out = tmp_path / "alumno.npz"
    argv = ["--teacher", str(teacher_path), "--data", str(names_file), "--out", str(out),
            *TINY_STUDENT]
    assert distill.main([*argv, "--epochs", "1"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    recorded = load_model(out).metadata["distillation"]
    teacher = load_model(teacher_path).metadata
    assert (recorded["teacher_val_nll"], recorded["teacher_split"]) == (
        teacher["metrics"]["val_nll"], teacher["split"])
    assert distill.main(argv) == 0                                # two epochs: closer
    assert f"replaced {out}: this run's" in capsys.readouterr().out
    served = out.read_bytes()
    assert distill.main([*argv, "--epochs", "1"]) == 0
    assert f"kept {out}: its" in capsys.readouterr().out
    assert out.read_bytes() == served and promote.run_path(out).exists()
    assert distill.main([*argv, "--epochs", "1", "--force"]) == 0
    assert out.read_bytes() != served and "--force" in capsys.readouterr().out


def test_a_student_of_a_worse_teacher_never_replaces_out(teacher_path, names_file, tmp_path,
                                                        capsys):
    out = tmp_path / "alumno.npz"
    argv = ["--teacher", str(teacher_path), "--data", str(names_file), "--out", str(out),
            *TINY_STUDENT]
    assert distill.main([*argv, "--epochs", "1"]) == 0
    saved = checkpoint.load(out)
    saved.metadata["distillation"]["teacher_val_nll"] = 0.5   # as if its teacher were far better
    checkpoint.save(out, saved)
    served = out.read_bytes()
    assert distill.main(argv) == 0
    assert "its teacher scores 0.5000 on held-out names" in capsys.readouterr().out
    assert out.read_bytes() == served
