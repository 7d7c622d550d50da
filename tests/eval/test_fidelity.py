"""The fidelity judge: naive Bayes by hand on tiny data, and the report on a scripted model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.data.corpus import Corpus, Vocabulary
from app.eval import fidelity
from app.eval.fidelity import NaiveBayes, fidelity_report, ngrams


def test_ngrams_frame_the_folded_name():
    assert ngrams("Ñu", (1, 2)) == ["^", "n", "u", "$", "^n", "nu", "u$"]


def test_naive_bayes_by_hand():
    judge = NaiveBayes.fit(["ab", "bb"], ["A", "B"], orders=(1,), alpha=1.0)
    # features ^ a b $; counts A = 1 1 1 1, B = 1 0 2 1; add-1 over 4 features
    assert judge.labels == ["A", "B"]
    a_score = 3 * math.log(2 / 8) + math.log(1 / 2)                 # "a": ^ a $
    b_score = 2 * math.log(2 / 8) + math.log(1 / 8) + math.log(1 / 2)
    assert np.allclose(judge.scores(["a"]), [[a_score, b_score]])
    assert judge.scores(["a", "bbb", "zzz a"]).argmax(axis=1).tolist() == [0, 1, 0]  # unseen z ignored
    result = judge.evaluate(["a", "bbb", "a"], ["A", "B", "B"], top=2)
    assert result["n"] == 3 and result["accuracy"] == pytest.approx(2 / 3)
    assert result["per_label"] == {"A": 1.0, "B": 0.5}
    assert result["balanced_accuracy"] == pytest.approx(0.75) and result["top2"] == 1.0


def test_prior_follows_the_labels_only_when_asked():
    names, labels = ["ab", "ab", "ab", "ba"], ["A", "A", "A", "B"]
    assert np.allclose(NaiveBayes.fit(names, labels).log_prior, np.log([0.5, 0.5]))
    assert np.allclose(NaiveBayes.fit(names, labels, uniform_prior=False).log_prior,
                       np.log([0.75, 0.25]))


class StateSpeller:
    """Spells, for each condition id, one of a few names (the app.lm.base interface)."""

    kind, n_params, metadata = "speller", 0, {}

    def __init__(self, names_by_state: dict[str, list[str]]):
        self.conditions = list(names_by_state)
        self.vocab = Vocabulary.from_names([n for ns in names_by_state.values() for n in ns])
        self.spelled = [[self.vocab.encode(n) + [0] for n in ns] for ns in names_by_state.values()]

    def initial_state(self, n, cond=None):
        return None, np.asarray(cond)

    def next_logits(self, ids, state):
        histories, cond = state
        histories = ([[] for _ in ids] if histories is None
                     else [h + [i] for h, i in zip(histories, ids.tolist(), strict=True)])
        logits = np.full((len(ids), len(self.vocab)), -50.0, dtype=np.float32)
        for row, history in enumerate(histories):
            for name in self.spelled[cond[row]]:
                if name[:len(history)] == history:
                    logits[row, name[len(history)]] = 0.0
        return logits, (histories, cond)

    def select(self, state, keep):
        histories, cond = state
        return [histories[k] for k in keep], cond[keep]


def test_report_scores_real_and_generated_names_against_known_answers():
    xs = ["Xazax", "Zaxaz", "Xaxaza", "Zazax", "Xazaza", "Zaxxaz", "Xaxxa", "Zazaxa", "Xaxaxa",
          "Zaxazx"]
    ls = ["Lolom", "Molol", "Lomolo", "Molom", "Lolomo", "Mollom", "Lomol", "Mololo", "Lolmo",
          "Momlol"]
    corpus = Corpus(names=xs + ls, states=["Equis"] * 10 + ["Ele"] * 10)
    faithful = StateSpeller({"Equis": ["Xaxazax", "Zazaxaz"], "Ele": ["Lomolom", "Molomol"]})
    swapped = StateSpeller({"Equis": ["Lomolom", "Molomol"], "Ele": ["Xaxazax", "Zazaxaz"]})
    report = fidelity_report({"fiel": faithful, "cruzado": swapped, "otro": object()}, corpus,
                             per_state=2, val_fraction=0.2)
    assert report["states"] == 2 and report["chance"] == 0.5
    real = report["real_held_out"]
    assert real["n"] == 4 and real["accuracy"] == 1.0         # 20% of each state held out
    by_name = {m["name"]: m for m in report["models"]}
    assert set(by_name) == {"fiel", "cruzado"}                 # unconditioned models are skipped
    assert by_name["fiel"]["n"] == 4 and by_name["fiel"]["accuracy"] == 1.0
    assert by_name["cruzado"]["accuracy"] == 0.0
    assert by_name["fiel"]["examples"]["Ele"] in {"Lomolom", "Molomol"}


@pytest.mark.parametrize("argv, message", [
    (["--per-state", "0"], "--per-state must be in [1, 10000], got 0"),
    (["--per-state", "-3"], "--per-state must be in [1, 10000], got -3"),
    (["--temperature", "0"], "--temperature must be in (0, 5.0], got 0.0"),
    (["--temperature", "nan"], "--temperature must be in (0, 5.0], got nan"),
    (["--models", "/nonexistent/models"], "--models /nonexistent/models: no such folder"),
])
def test_bad_flags_exit_2_before_any_model_is_judged(capsys, monkeypatch, argv, message):
    monkeypatch.setattr(fidelity, "fidelity_report", lambda *args, **kwargs: pytest.fail("judged"))
    with pytest.raises(SystemExit) as exit_:
        fidelity.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_folder_without_a_state_model_is_an_error_naming_what_was_skipped(capsys, monkeypatch,
                                                                           tmp_path,
                                                                           tiny_models_folder):
    monkeypatch.setattr(fidelity, "fidelity_report", lambda *args, **kwargs: pytest.fail("judged"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert fidelity.main(["--models", str(tmp_path), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""   # --json's output stays JSON: what was skipped goes to stderr
    assert "skipped: " in err and "bad.npz" in err
    assert f"no state-conditioned model in {tmp_path}" in err
    assert fidelity.main(["--models", str(tiny_models_folder)]) == 2   # lstm, rnn: not by state
