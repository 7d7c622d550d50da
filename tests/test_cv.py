"""Cross-validation: each fold's recipe trains on the other folds and scores the held-out names."""

import json

import pytest

from app import cv
from app.data.corpus import DEFAULT_NAMES, read_names


def test_markov_recipe_is_scored_on_names_it_never_saw(tmp_path):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(read_names(DEFAULT_NAMES)[::8]), encoding="utf-8")   # ~300 names
    summary = cv.run(["markov"], data, 3, seed=0, label="tiny", train_flags=[], jobs=2,
                     runs_dir=tmp_path / "runs", log=lambda _: None)
    folds = summary["models"]["markov"]["folds"]
    assert len(folds) == 3 and all(1.0 < f["nll"] < 4.0 for f in folds)
    names = read_names(data)
    held_out = [set(names) - set(read_names(tmp_path / "runs" / "tiny" / f"fold{i + 1}" / "train.txt"))
                for i in range(3)]
    assert set().union(*held_out) == set(names) and sum(map(len, held_out)) == len(set(names))
    # every held-out token is scored once, but for the few names with a character the fold's
    # training names lack
    assert sum(f["skipped"] for f in folds) < 10
    assert sum(f["n_tokens"] for f in folds) <= sum(len(n) + 1 for n in names)
    saved = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert saved["models"]["markov"]["mean"] == summary["models"]["markov"]["mean"]


def test_a_finished_fold_is_not_trained_again(tmp_path, monkeypatch):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(read_names(DEFAULT_NAMES)[::8]), encoding="utf-8")
    kwargs = dict(label="again", train_flags=[], jobs=1, runs_dir=tmp_path / "runs",
                  log=lambda _: None)
    first = cv.run(["markov"], data, 2, 0, **kwargs)
    monkeypatch.setattr(cv.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("retrained a finished fold")))
    assert cv.run(["markov"], data, 2, 0, **kwargs) == first


def test_published_rows_replace_the_same_label_and_model(tmp_path):
    table = tmp_path / "cv.json"
    run = {"label": "a", "data": "x/names.txt", "folds": 2, "seed": 0, "train_flags": "",
           "models": {"markov": {"mean": 1.5, "sd": 0.1, "folds": [{"nll": 1.4}, {"nll": 1.6}]}}}
    cv.publish(run, table)
    cv.publish({**run, "label": "b"}, table)
    cv.publish({**run, "models": {"markov": {**run["models"]["markov"], "mean": 1.2}}}, table)
    rows = json.loads(table.read_text())["rows"]
    assert [(r["label"], r["mean"]) for r in rows] == [("b", 1.5), ("a", 1.2)]
    assert rows[0]["fold_nll"] == [1.4, 1.6] and rows[0]["data"] == "names.txt"


def test_a_recipe_published_as_served_takes_the_place_of_the_one_it_replaces(tmp_path):
    table = tmp_path / "cv.json"
    run = {"label": "ensemble", "data": "names.txt", "folds": 2, "seed": 0, "train_flags": "",
           "models": {m: {"mean": 1.5, "sd": 0.1, "folds": [{"nll": 1.5}]} for m in ("lstm", "rnn")}}
    cv.publish(run, table, served=True)
    cv.publish({**run, "label": "student", "models": {"alumno": run["models"]["lstm"]}}, table,
               served=True)
    rows = {(r["label"], r["model"]): r for r in json.loads(table.read_text())["rows"]}
    assert rows["student", "alumno"]["served"] and rows["student", "alumno"]["served_as"] == "lstm"
    assert not rows["ensemble", "lstm"]["served"] and rows["ensemble", "rnn"]["served"]


def test_mixture_flags_reach_only_the_mezcla_recipe(tmp_path):
    fold = cv.Fold(0, tmp_path, tmp_path / "train.txt", [], None, tmp_path)
    flags = cv.Flags(["--hidden", "64"], mixture=["--weight", "scalar"])
    mezcla = cv.recipe_command("mezcla", fold, flags, tmp_path / "m.npz")
    assert mezcla[2] == "app.mixture" and mezcla[-2:] == ["--weight", "scalar"]
    lstm = cv.recipe_command("lstm", fold, flags, tmp_path / "l.npz")
    assert lstm[2] == "app.train" and lstm[-2:] == ["--hidden", "64"] and "scalar" not in lstm


def test_the_ensemble_recipe_cannot_be_published_as_the_served_lstm(capsys):
    with pytest.raises(SystemExit) as exit_:
        cv.main(["--model", "lstm", "--publish", "x", "--served"])
    assert exit_.value.code == 2
    assert "the served lstm is the alumno recipe" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--train-flags", "--mixture-flags", "--distill-flags"])
def test_flags_a_shell_could_not_split_exit_2_before_any_run(capsys, monkeypatch, option):
    monkeypatch.setattr(cv, "run", lambda *args, **kwargs: pytest.fail("cross-validation ran"))
    with pytest.raises(SystemExit) as exit_:
        cv.main(["--model", "markov", option, '"unclosed'])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"""{option} '"unclosed': no closing quotation""" in err


@pytest.mark.parametrize("folds", ["1", "21"])
def test_a_fold_count_out_of_range_exits_2_before_the_data_is_read(capsys, monkeypatch, folds):
    monkeypatch.setattr(cv, "read_corpus", lambda *args: pytest.fail("the data was read"))
    with pytest.raises(SystemExit) as exit_:
        cv.main(["--model", "markov", "--folds", folds])
    assert exit_.value.code == 2
    assert f"--folds must be from 2 to 20, got {folds}" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--label", "../../etc"], "--label must be a plain folder name, got '../../etc'"),
    (["--label", "/tmp/x"], "--label must be a plain folder name"),
    (["--seed", "4294967296"], "--seed must be in [0, 4294967295], got 4294967296"),
    (["--jobs", "1000"], "--jobs must be in [1, 64], got 1000"),
    (["--served"], "--served needs --publish"),
    (["--train-flags", "--hidden 5"], "--train-flags does nothing here: it is for a neural recipe"),
    (["--mixture-flags", "--weight scalar"], "--mixture-flags does nothing here"),
    (["--teachers", "base"], "--teachers does nothing here: it is for the alumno recipe"),
    (["--teacher", "lstm"], "--teacher does nothing here"),
    (["--distill-flags", "--samples 10"], "--distill-flags does nothing here"),
])
def test_options_that_would_go_astray_exit_2_before_any_run(capsys, monkeypatch, argv, message):
    monkeypatch.setattr(cv, "run", lambda *args, **kwargs: pytest.fail("cross-validation ran"))
    with pytest.raises(SystemExit) as exit_:
        cv.main(["--model", "markov", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
