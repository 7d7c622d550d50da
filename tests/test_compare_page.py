"""The /comparar page, /api/report and the per-character probabilities of /api/score."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from app import checkpoint, report
from app.main import create_app
from app.markov import MarkovLM
from tests.conftest import TINY_NAMES, make_tiny_model


def tiny_markov(names=TINY_NAMES) -> MarkovLM:
    model = make_tiny_model("lstm")
    markov = MarkovLM.fit([model.vocab.encode(n) for n in names], 3, model.vocab)
    markov.metadata = {
        "metrics": {"val_nll": 2.2, "train_seconds": 0.01, "chars_per_second": 5e5},
        "history": [{"order": k, "train_nll": 2.0 - 0.1 * k, "val_nll": 2.6 - 0.1 * k}
                    for k in (2, 3, 4)],
        "ngram_sizes": [len(markov.arrays[f"k{k}.keys"]) for k in (1, 2, 3)],
    }
    return markov


@pytest.fixture(scope="module")
def compare_folder(tmp_path_factory):
    """Tiny lstm, rnn (with training histories) and markov checkpoints, and their report."""
    folder = tmp_path_factory.mktemp("compare_models")
    models = {}
    for kind, start in (("rnn", 3.0), ("lstm", 2.8)):
        model = make_tiny_model(kind)
        model.metadata["history"] = [{"epoch": e, "train_nll": start - 0.3 * e,
                                      "val_nll": start - 0.2 * e} for e in (1, 2, 3)]
        models[kind] = model
    models["markov"] = tiny_markov()
    for name, model in models.items():
        checkpoint.save(folder / f"{name}.npz", model.checkpoint(model.metadata))
    real = TINY_NAMES + [f"{a} de {b}" for a, b in zip(TINY_NAMES, TINY_NAMES[::-1], strict=True)]
    built = report.build_report(models, real, samples=30, progress=False)
    report.write_report(built, folder / "report.json")
    return folder


@pytest.fixture(scope="module")
def client(compare_folder):
    with TestClient(create_app(compare_folder)) as client:
        yield client


def test_score_gives_each_characters_probability(client):
    body = client.get("/api/score", params={"name": "Tulum", "model": "markov"}).json()
    assert [c["char"] for c in body["characters"]] == list("Tulum")
    probabilities = [c["probability"] for c in body["characters"]] + [body["end_probability"]]
    assert all(0.0 < p <= 1.0 for p in probabilities)
    # the NLL per char is the mean of -log of exactly these probabilities
    assert body["nll_per_char"] == pytest.approx(-sum(map(math.log, probabilities)) / 6)
