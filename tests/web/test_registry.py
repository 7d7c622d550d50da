"""Loading the served models and placing scores among the real names."""

from __future__ import annotations

import numpy as np

from app.data.gazetteer import load_gazetteer
from app.lm import checkpoint
from app.lm.base import names_nll
from app.lm.ensemble import EnsembleLM, MixtureLM
from app.lm.gate import FEATURES, Gate
from app.lm.markov import MarkovLM
from app.lm.product import Product
from app.web.registry import ServedModel, load_registry, serve_model
from tests.conftest import TINY_NAMES, make_tiny_model, make_tiny_state_model


def test_percentile_counts_real_names_the_model_finds_less_likely(tiny_lstm):
    served = serve_model("lstm", tiny_lstm, load_gazetteer())
    scores = served.real_nll
    assert len(scores) > 100 and np.all(np.diff(scores) >= 0)
    assert served.percentile(scores[0] - 1) == 100.0
    assert served.percentile(scores[-1] + 1) == 0.0
    middle = scores[len(scores) // 2]
    assert served.percentile(middle) == 100.0 * np.sum(scores > middle) / len(scores)


def test_state_conditioned_model_scores_with_the_state_asked_for_or_its_likeliest():
    model = make_tiny_state_model()
    served = serve_model("estados", model, load_gazetteer())
    assert len(served.real_nll) > 0   # only names from the three states count
    per_state = [names_nll(model, ["Tepic"], cond=np.array([i]))[0].mean() for i in range(3)]
    nll, cond = served.token_nll("Tepic")
    assert cond == int(np.argmin(per_state)) and np.isclose(nll.mean(), min(per_state))
    for i in range(3):
        nll, cond = served.token_nll("Tepic", i)
        assert cond == i and np.isclose(nll.mean(), per_state[i])


def test_registry_loads_every_checkpoint_and_records_failures(tmp_path, tiny_lstm):
    checkpoint.save(tmp_path / "bueno.npz", tiny_lstm.checkpoint(tiny_lstm.metadata))
    (tmp_path / "malo.npz").write_text("no")
    registry = load_registry(tmp_path, load_gazetteer())
    assert list(registry.models) == ["bueno"] and registry.default == "bueno"
    assert "malo.npz" in registry.failures


def test_an_empty_models_folder_is_a_failure_that_says_why(tmp_path):
    registry = load_registry(tmp_path, load_gazetteer())
    assert registry.models == {}
    assert registry.failures == {str(tmp_path): "no *.npz checkpoint in the models folder"}


def describe(model) -> str:
    return ServedModel("lstm", model, np.array([])).description


def test_a_student_an_ensemble_and_a_single_network_are_told_apart():
    single = make_tiny_model("lstm")
    student = make_tiny_model("lstm")
    student.metadata = {**student.metadata, "distillation": {"teacher_kind": "mezcla"}}
    ensemble = EnsembleLM([make_tiny_model("lstm", seed=s) for s in (0, 1)], metadata={})
    assert describe(single).startswith("LSTM:") and "aprendió" not in describe(single)
    assert "sola red que aprendió" in describe(student) and "Son" not in describe(student)
    assert "Son 2 redes" in describe(ensemble)
    student.metadata["distillation"]["teacher_kind"] = "ensemble"   # a student of another teacher
    assert "mezcla" not in describe(student)


def test_a_mezcla_says_when_it_also_multiplies_its_two_sides():
    members = [make_tiny_model("lstm", seed=s) for s in (0, 1)]
    ngram = MarkovLM.fit([members[0].vocab.encode(n) for n in TINY_NAMES], 2, members[0].vocab)
    gate = Gate(np.zeros(len(FEATURES) + 1), np.zeros(len(FEATURES)), np.ones(len(FEATURES)))
    gated = MixtureLM([EnsembleLM(members), ngram], [0.5, 0.5], {}, gate=gate)
    multiplied = MixtureLM([EnsembleLM(members), ngram], [0.5, 0.5], {}, gate=gate,
                           product=Product(0.4, 1.1, 0.6))
    assert "producto" not in ServedModel("mezcla", gated, np.array([])).description
    assert "producto" in ServedModel("mezcla", multiplied, np.array([])).description
