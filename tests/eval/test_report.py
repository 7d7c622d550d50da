"""The comparison report: metrics with known answers, then the whole report on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import evaluate
from app.data.corpus import Vocabulary, split_names
from app.eval import report
from app.lm.markov import MarkovLM
from tests.conftest import TINY_NAMES

REAL = ["Abalá", "Acala", "Ahome", "San Juan de los Lagos", "Tepic"]
TRAIN = ["Abalá", "Acala", "San Juan de los Lagos"]  # Ahome and Tepic held out


def test_samples_copied_from_the_training_list_are_not_novel():
    stats = report.sample_stats(["Acala", "Abalá", "San Juan de los Lagos", "Acala"], REAL, TRAIN)
    assert stats["novelty_rate"] == 0.0
    assert stats["copy_rate"] == 1.0
    assert stats["held_out_rate"] == 0.0
    assert stats["distinct_rate"] == 0.75
    assert stats["examples"] == ["Acala", "Abalá", "San Juan de los Lagos"]


def test_held_out_names_and_made_up_names_are_told_apart():
    # comparison folds case and accents, as the service's novelty filter does
    stats = report.sample_stats(["AHOME", "tepic", "Zapotlanejo Nuevo", "Xo"], REAL, TRAIN)
    assert stats["held_out_rate"] == 0.5
    assert stats["novelty_rate"] == 0.5
    assert stats["copy_rate"] == 0.0
    assert stats["distinct_rate"] == 1.0


@pytest.mark.parametrize("metadata, trained_on_all", [
    ({"train_config": {"members": 1, "val_fraction": 0.2, "seed": 0}}, False),
    ({"train_config": {"members": 5, "val_fraction": 0.2, "seed": 0}}, True),   # cross-fitted
    ({"train_config": {"members": 1, "val_fraction": 0.2, "seed": 0},
      "distillation": {"teacher_kind": "mezcla"}}, True),                      # a student
])
def test_copies_count_every_name_a_cross_fitted_or_distilled_model_learned(metadata,
                                                                         trained_on_all):
    model = type("Model", (), {"metadata": {**metadata, "data_path": "/nonexistent.txt"}})()
    train = report.training_names(model, TINY_NAMES)
    assert (sorted(train) == sorted(TINY_NAMES)) is trained_on_all
    assert trained_on_all or set(train) == set(split_names(TINY_NAMES, 0.2, 0).train)


def test_lengths_words_and_unfinished_samples():
    samples = ["Ab", "San Juan de los Lagos", None, "Abcd", None]
    stats = report.sample_stats(samples, REAL, TRAIN, n_examples=2)
    assert stats["samples"] == 5
    assert stats["unfinished_rate"] == pytest.approx(0.4)
    assert stats["mean_length"] == pytest.approx((2 + 21 + 4) / 3)
    assert stats["over_three_words"] == pytest.approx(1 / 3)   # five words
    assert stats["novelty_rate"] == pytest.approx(2 / 3)
    assert stats["examples"] == ["Ab", "San Juan de los Lagos"]
    assert report.name_stats(["San Juan de Dios", "Tepic"])["over_three_words"] == 0.5
    assert report.sample_stats([None, None], REAL, TRAIN)["mean_length"] is None  # valid JSON


def memorising_markov() -> MarkovLM:
    """An 8-gram of the tiny training names: near T=0 it can only retrace a training name."""
    train = split_names(TINY_NAMES, 0.3).train
    vocab = Vocabulary.from_names(TINY_NAMES)
    model = MarkovLM.fit([vocab.encode(n) for n in train], 8, vocab)
    model.metadata = {"metrics": {"val_nll": 2.5, "train_seconds": 0.01,
                                  "chars_per_second": 1e6},
                      "train_config": {"val_fraction": 0.3, "seed": 0}}
    return model


def test_report_on_a_model_that_can_only_copy():
    built = report.build_report({"markov": memorising_markov()}, TINY_NAMES, samples=60,
                                temperatures=(0.02, 1.0), progress=False)
    [entry] = built["models"]
    assert entry["name"] == "markov" and entry["val_nll"] == 2.5
    cold, warm = entry["sampling"]
    assert cold["temperature"] == 0.02 and cold["samples"] == 60
    assert cold["novelty_rate"] == 0.0 and cold["copy_rate"] == 1.0
    assert cold["distinct_rate"] <= 3 / 60  # the most likely names (Abalá, Acala, Ahome tie)
    assert warm["distinct_rate"] > cold["distinct_rate"]
    assert built["real"]["mean_length"] == pytest.approx(sum(map(len, TINY_NAMES)) / 20)


def test_evaluate_report_writes_json_and_prints_tables(tiny_models_dir, monkeypatch, capsys):
    model = memorising_markov()
    model.metadata["ngram_sizes"] = [len(model.arrays[f"k{k}.keys"]) for k in range(1, 9)]
    from app.lm import checkpoint
    checkpoint.save(tiny_models_dir / "markov.npz", model.checkpoint(model.metadata))
    (tiny_models_dir / "broken.npz").write_bytes(b"not a zip")
    names = tiny_models_dir / "names.txt"
    more = [f"{a} de {b}" for a, b in zip(TINY_NAMES, reversed(TINY_NAMES), strict=True)]
    names.write_text("\n".join(TINY_NAMES + more), "utf-8")
    monkeypatch.setattr(report, "MODELS_DIR", tiny_models_dir)
    monkeypatch.setattr(report, "DEFAULT_NAMES", names)
    monkeypatch.setattr(report, "SAMPLES", 40)
    assert evaluate.main(["--report"]) == 0
    out = capsys.readouterr().out
    written = json.loads((tiny_models_dir / "report.json").read_text("utf-8"))
    assert [m["name"] for m in written["models"]] == ["rnn", "lstm", "markov"]
    assert all(len(m["sampling"]) == 4 and m["sampling"][0]["samples"] == 40
               for m in written["models"])
    assert "skipped:" in out and "broken.npz" in out
    assert "| lstm | 0.8 |" in out and "| markov | 1.2 |" in out


def test_state_conditioned_models_draw_states_in_proportion_to_municipalities():
    model = memorising_markov()
    model.conditions = ["Colima", "Oaxaca"]
    model.metadata["condition_counts"] = [0, 570]
    drawn_states = []
    start = model.initial_state
    model.initial_state = lambda n, cond=None: (drawn_states.append(cond), start(n))[1]
    report.sample_model(model, 30, 1.0, np.random.default_rng(0))
    drawn = np.concatenate(drawn_states)   # a batch may add filler rows (app.generation.drawing)
    assert len(drawn) >= 30 and set(drawn.tolist()) == {1}
