"""What the page says of each served model is drawn from how it was made."""

from __future__ import annotations

import numpy as np

from app.lm.ensemble import EnsembleLM
from app.web.registry import ServedModel
from tests.conftest import make_tiny_model


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
