"""A trained character model as the rest of the product sees it: vocabulary + next-token logits.

Every model kind (``app.lm.neural``, ``app.lm.markov``, ``app.lm.ensemble``) offers the same small
interface, so sampling, scoring, evaluation and the web service never ask which kind it is:

    state = model.initial_state(n, cond)          # n sequences, each at the boundary token
    logits, state = model.next_logits(ids, state) # ids (n,) -> logits (n, V)

``load_model(path)`` reads any checkpoint and returns the right class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.data.corpus import make_batch
from app.lm import checkpoint
from app.lm.checkpoint import CheckpointError
from app.lm.ensemble import EnsembleLM, MixtureLM
from app.lm.markov import MarkovLM
from app.lm.neural import NeuralLM

MODEL_CLASSES: dict[str, type] = {"rnn": NeuralLM, "lstm": NeuralLM, "markov": MarkovLM,
                                  "mezcla": MixtureLM, "ensemble": EnsembleLM}


def _expected_shapes(kind, metadata):
    if kind not in MODEL_CLASSES:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(sorted(MODEL_CLASSES))})")
    return MODEL_CLASSES[kind].expected_shapes(metadata)


def load_checkpoint(path: str | Path) -> checkpoint.Checkpoint:
    """Read any model checkpoint, its arrays checked against its kind. Raises CheckpointError."""
    return checkpoint.load(path, expected_shapes=_expected_shapes)


def load_model(path: str | Path):
    """Load and validate any model checkpoint. Raises checkpoint.CheckpointError."""
    ckpt = load_checkpoint(path)
    return MODEL_CLASSES[ckpt.kind].from_checkpoint(ckpt)


def names_nll(model, names: list[str], cond: np.ndarray | None = None,
              batch_size: int = 512) -> list[np.ndarray]:
    """Per-token NLL (nats) of each name, its end token included: one array of len(name)+1 each.

    Every name's characters must be in the model's vocabulary.
    """
    out: list[np.ndarray] = []
    for start in range(0, len(names), batch_size):
        chunk = names[start:start + batch_size]
        c = None if cond is None else cond[start:start + batch_size]
        batch = make_batch([model.vocab.encode(n) for n in chunk], cond=c)
        nll = model.token_nll(batch)
        out.extend(nll[: len(name) + 1, b].astype(np.float64) for b, name in enumerate(chunk))
    return out


def scorable(model, names: list[str], states: list[str] | None = None
             ) -> tuple[list[int], np.ndarray | None]:
    """The indices of the ``names`` that ``model`` can score, and their condition ids (None for
    an unconditioned model): every name whose characters it knows and, when it is conditioned
    on the state, whose state (``states``, one per name) it was trained on."""
    keep = [i for i, name in enumerate(names) if not model.vocab.unknown(name)]
    conditions = getattr(model, "conditions", None)
    if not conditions:
        return keep, None
    index = {state: c for c, state in enumerate(conditions)}
    keep = [i for i in keep if states[i] in index]
    return keep, np.array([index[states[i]] for i in keep], dtype=np.int64)


MODEL_ORDER = ("rnn", "lstm", "markov", "mezcla")  # tables read from simplest to strongest


def model_order(name: str) -> tuple:
    """Sort key: rnn, lstm, markov, mezcla, then any other model by name."""
    return (MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER), name)


def load_models(models_dir: Path, log=print) -> dict:
    """Every loadable ``*.npz`` in the folder by file stem; unloadable ones are reported."""
    models = {}
    for path in sorted(models_dir.glob("*.npz"), key=lambda p: model_order(p.stem)):
        try:
            models[path.stem] = load_model(path)
        except CheckpointError as exc:
            log(f"skipped: {exc}")
    return models
