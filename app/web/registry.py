"""The models the service serves: every ``*.npz`` in one folder, loaded once at start-up.

    TOPONIMO_MODELS_DIR=/tmp/svc_models python -m app

A file that cannot be loaded is logged with its reason and skipped; the others still serve.
Each model also scores the real names once, so a score can be placed among them (percentile).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.data.gazetteer import Gazetteer
from app.lm.base import load_model, names_nll, scorable
from app.paths import MODELS_DIR

MODELS_DIR_ENV = "TOPONIMO_MODELS_DIR"
DEFAULT_MODEL = "lstm"

# one line of Spanish per model kind, shown on the page and in /api/models
DESCRIPTIONS = {
    "lstm": "LSTM: recuerda más contexto; nombres largos y compuestos que suenan muy reales.",
    "rnn": "RNN simple: memoria corta; nombres más libres y a veces más extraños.",
    "markov": "Cadena de Márkov: solo mira las últimas letras; rápida y sin red neuronal.",
    "mezcla": "Mezcla: promedia letra a letra la LSTM y la cadena de Márkov, con un peso que cambia "
              "en cada letra según cuán segura está cada una; la mejor en validación.",
}
# the same, for models that were also told each name's state
DESCRIPTIONS_BY_STATE = {
    "lstm": "LSTM por estado: una sola LSTM que sabe de qué estado es cada nombre; elige uno "
            "en «Estado» para inventar nombres de ese estado.",
    "rnn": "RNN simple por estado: memoria corta, pero sabe de qué estado es cada nombre; "
           "elige uno en «Estado».",
}

log = logging.getLogger("toponimo")


class UnknownModel(KeyError):
    """A request named a model that is not loaded; the message lists the ones that are."""

    def __init__(self, name: str, available: list[str]):
        self.name, self.available = name, available
        listed = ", ".join(available) or "none (see /readyz)"
        super().__init__(f"unknown model {name!r}; available: {listed}" if name
                         else f"no model is loaded; available: {listed}")

    def __str__(self) -> str:
        return self.args[0]


@dataclass
class ServedModel:
    name: str              # the file's stem: models/lstm.npz -> "lstm"
    model: object          # anything with the app.lm.base interface
    real_nll: np.ndarray   # sorted NLL per char of the real names the vocabulary covers

    @property
    def conditioned(self) -> bool:
        """True when the model was trained with each name's state (it accepts ``estado``)."""
        return bool(getattr(self.model, "conditions", None))

    @property
    def description(self) -> str:
        kind = getattr(self.model, "family", self.model.kind)   # an ensemble of LSTMs is an lstm
        if self.conditioned:
            text = DESCRIPTIONS_BY_STATE.get(kind, f"Modelo de tipo {kind}, entrenado por estado.")
        else:
            text = DESCRIPTIONS.get(kind, f"Modelo de tipo {kind}.")
        teacher = self.model.metadata.get("distillation", {}).get("teacher_kind")
        if teacher == "mezcla":   # the served lstm's recipe: say what it learned from
            text += (" Es una sola red que aprendió, letra por letra, las probabilidades de la "
                     "mezcla: casi tan buena como ella, con el costo de una sola red.")
        if getattr(self.model, "product", None) is not None:   # app.lm.product
            text += (" Además suma una parte del producto de las dos, que pone la probabilidad "
                     "donde coinciden.")
        if kind != self.model.kind:   # an ensemble: say how it was made
            text += (f" Son {len(self.model.components)} redes, cada una entrenada sin una parte "
                     f"distinta de los nombres, que promedian sus probabilidades letra a letra.")
        return text

    def token_nll(self, name: str, cond: int | None = None) -> tuple[np.ndarray, int | None]:
        """NLL of each character of ``name`` and of its end token, and the condition it was
        scored under: a state-conditioned model uses condition ``cond`` or, without it, its
        likeliest one (None for a model that is not conditioned)."""
        conditions = getattr(self.model, "conditions", None)
        if not conditions:
            return names_nll(self.model, [name])[0], None
        if cond is not None:
            return names_nll(self.model, [name], cond=np.array([cond]))[0], cond
        per_state = names_nll(self.model, [name] * len(conditions), cond=np.arange(len(conditions)))
        best = min(range(len(conditions)), key=lambda c: per_state[c].mean())
        return per_state[best], best

    def percentile(self, nll_per_char: float) -> float:
        """Share (0-100) of real names the model finds less likely than this score."""
        worse = len(self.real_nll) - np.searchsorted(self.real_nll, nll_per_char, side="right")
        return 100.0 * float(worse) / len(self.real_nll) if len(self.real_nll) else 0.0


@dataclass
class Registry:
    folder: Path
    models: dict[str, ServedModel] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)   # file name -> reason

    @property
    def default(self) -> str | None:
        if DEFAULT_MODEL in self.models:
            return DEFAULT_MODEL
        return next(iter(self.models), None)

    @property
    def conditioned(self) -> list[str]:
        """Names of the loaded models that accept a state."""
        return sorted(name for name, served in self.models.items() if served.conditioned)

    def get(self, name: str | None = None) -> ServedModel:
        """The model called ``name``; None or empty: the default one."""
        name = name or self.default
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(name or "", sorted(self.models)) from None


def models_dir() -> Path:
    """The folder named by $TOPONIMO_MODELS_DIR, else the repository's models/."""
    return Path(os.environ.get(MODELS_DIR_ENV) or MODELS_DIR)


def serve_model(name: str, model, gazetteer: Gazetteer) -> ServedModel:
    """Wrap a loaded model with the scores of the real names (under their own state, if the
    model is conditioned on it)."""
    keep, cond = scorable(model, gazetteer.names, gazetteer.states)
    # sorted by length, each batch pads little (the order of the scores does not matter)
    order = np.argsort([len(gazetteer.names[i]) for i in keep], kind="stable")
    scores = names_nll(model, [gazetteer.names[keep[i]] for i in order],
                       cond=None if cond is None else cond[order], batch_size=128)
    return ServedModel(name, model, np.sort([float(nll.mean()) for nll in scores]))


def load_registry(folder: Path, gazetteer: Gazetteer) -> Registry:
    """Load every ``folder/*.npz``; never raises for a bad file, records why it failed."""
    registry = Registry(folder)
    if not folder.is_dir():
        registry.failures[str(folder)] = "models folder not found"
        log.error("models folder %s not found; no model will serve", folder)
        return registry
    for path in sorted(folder.glob("*.npz")):
        try:
            registry.models[path.stem] = serve_model(path.stem, load_model(path), gazetteer)
        except Exception as exc:  # noqa: BLE001 - any bad file must not stop the service
            registry.failures[path.name] = str(exc) or type(exc).__name__
            log.error("skipping model %s: %s", path.name, registry.failures[path.name])
        else:
            log.info("loaded model %s from %s", path.stem, path)
    if not registry.models:
        if not registry.failures:
            registry.failures[str(folder)] = "no *.npz checkpoint in the models folder"
        log.error("no loadable model in %s", folder)
    release_free_memory()
    return registry


def release_free_memory() -> None:
    """Hand the scratch memory of scoring the real names back to the OS (glibc keeps it
    otherwise: about 25 MB per worker)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    libc = ctypes.CDLL(libc_name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
