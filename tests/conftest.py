"""Shared fixtures: tiny models built in a blink, so tests never depend on the committed weights."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from app import train
from app.data.corpus import DEFAULT_NAMES, Vocabulary, read_names
from app.lm import checkpoint
from app.lm.neural import NeuralLM
from app.nn import network
from app.nn.network import ModelConfig

TINY_NAMES = ["Abalá", "Acala", "Ahome", "Álamos", "Bacum", "Bavispe", "Colima", "Durango",
              "Etchojoa", "Guaymas", "Huépac", "Ixtlán", "Jalpa", "Mexicali", "Navojoa",
              "Ñuu Savi", "Oaxaca", "Tepic", "Tulum", "Yécora"]


# one model, not an ensemble: most training tests are about a single run (tests/test_crossfit.py
# trains ensembles)
TINY_TRAIN_FLAGS = ["--hidden", "12", "--embed", "6", "--batch-size", "16", "--quiet",
                    "--members", "1"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, for a test server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def names_file(tmp_path):
    """Every 20th real name (~120): enough for a split, trained in a blink."""
    path = tmp_path / "names.txt"
    path.write_text("\n".join(read_names(DEFAULT_NAMES)[::20]), encoding="utf-8")
    return path


def train_tiny(names_file, out, *extra) -> int:
    """``python -m app.train`` on ``names_file`` with a tiny model; the exit code."""
    return train.main(["--data", str(names_file), "--out", str(out), *TINY_TRAIN_FLAGS, *extra])


def make_tiny_model(kind: str = "lstm", seed: int = 0, names=TINY_NAMES) -> NeuralLM:
    """An untrained small model over the characters of ``names``."""
    vocab = Vocabulary.from_names(names)
    config = ModelConfig(kind=kind, vocab_size=len(vocab), hidden=16, layers=2, embed=8)
    params = network.init_params(config, np.random.default_rng(seed))
    metadata = {"metrics": {"val_nll": 3.0, "train_seconds": 0.1, "best_epoch": 1},
                "data_sha256": "0" * 64, "history": []}
    return NeuralLM(config, params, vocab, metadata)


@pytest.fixture
def tiny_lstm() -> NeuralLM:
    return make_tiny_model("lstm")


@pytest.fixture
def tiny_rnn() -> NeuralLM:
    return make_tiny_model("rnn")


@pytest.fixture
def tiny_models_dir(tmp_path):
    """A models folder holding tiny lstm.npz and rnn.npz checkpoints."""
    for kind in ("lstm", "rnn"):
        model = make_tiny_model(kind)
        checkpoint.save(tmp_path / f"{kind}.npz", model.checkpoint(model.metadata))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_models_folder(tmp_path_factory):
    """Like tiny_models_dir, created once per session for app-level tests (read-only)."""
    folder = tmp_path_factory.mktemp("tiny_models")
    for kind in ("lstm", "rnn"):
        model = make_tiny_model(kind)
        checkpoint.save(folder / f"{kind}.npz", model.checkpoint(model.metadata))
    return folder


TINY_STATES = ["Oaxaca", "Sonora", "Yucatán"]
TINY_STATE_COUNTS = [570, 72, 106]   # municipalities, as in the data


def make_tiny_state_model(kind: str = "lstm", seed: int = 0) -> NeuralLM:
    """An untrained small model conditioned on three real states (app.train's metadata)."""
    vocab = Vocabulary.from_names(TINY_NAMES)
    config = ModelConfig(kind=kind, vocab_size=len(vocab), hidden=16, layers=1, embed=8,
                         conditions=len(TINY_STATES), cond_embed=4)
    params = network.init_params(config, np.random.default_rng(seed))
    metadata = {"metrics": {"val_nll": 2.9, "train_seconds": 0.1, "best_epoch": 1},
                "data_sha256": "0" * 64, "history": [], "condition": "estado",
                "conditions": TINY_STATES, "condition_codes": ["20", "26", "31"],
                "condition_counts": TINY_STATE_COUNTS}
    return NeuralLM(config, params, vocab, metadata)


@pytest.fixture(scope="session")
def tiny_state_models_folder(tmp_path_factory):
    """Tiny lstm.npz and rnn.npz beside a tiny lstm_estado.npz conditioned on three states."""
    folder = tmp_path_factory.mktemp("tiny_state_models")
    models = {kind: make_tiny_model(kind) for kind in ("lstm", "rnn")}
    models["lstm_estado"] = make_tiny_state_model("lstm")
    for name, model in models.items():
        checkpoint.save(folder / f"{name}.npz", model.checkpoint(model.metadata))
    return folder
