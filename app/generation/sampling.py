"""Invent names with any model: the one sampling function behind the CLI, the API and the tests.

    python -m app.sample --model models/lstm.npz -n 20 --temperature 0.8

Names are drawn as one batch, vectorised over names (``app.generation.drawing``); only time steps are
looped. A sequence leaves the batch when it emits the boundary token, so the batch shrinks as
names finish.
Rejected draws (real names when ``novel``, repeats, names hitting ``max_length``, names failing
the ``suffix``, ``contains`` or ``min_length`` filters) are replaced by further rounds until ``n``
names are found or the draw budget is spent.
Every draw reads its own block of random numbers, taken in order from the generator, so the
draws do not depend on how they are split into rounds: with the same seed and options, the
names for ``n`` are the first ``n`` of the names for any larger ``n``.
A model conditioned on the state samples every name for one state when asked, else a state per
name in proportion to its number of municipalities; each name says which state it used.
``sample_names`` runs all at once; ``sample_steps`` is the same function as a generator that
yields after every step, which the web service drives in slices on its event loop.
A ``Deadline`` bounds the compute time (not the draws): when it passes, sampling stops at the
next step and returns the names found so far, saying why it stopped.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from app.data.corpus import fold
from app.data.gazetteer import Estado, Gazetteer, Nearest, load_gazetteer
from app.generation.deadline import Deadline
from app.generation.drawing import draw_steps, run_to_end

MAX_LENGTH_DEFAULT = 40
MAX_LENGTH_LIMIT = 64
TEMPERATURE_MAX = 5.0
TOP_K_MAX = 1000      # more than any vocabulary: the largest k that means something
DRAWS_PER_NAME = 20   # budget: at most this many draws per requested name ...
MIN_DRAWS = 256       # ... and never fewer than this, so small requests can survive bad luck
ROUND_MAX = 8192      # rows drawn at once: keeps one step short (a deadline is checked between
                      # steps) and the memory of a round bounded (~130 MB for the LSTM)


class SamplingError(ValueError):
    """A sampling request that cannot be served.

    ``field`` names the offending option, ``code`` says what is wrong with it (a stable key
    the web layer turns into Spanish text) and ``context`` carries the details.
    """

    def __init__(self, field: str, code: str, message: str, **context):
        super().__init__(message)
        self.field, self.code, self.context = field, code, context


@dataclass(frozen=True)
class SampledName:
    name: str
    novel: bool
    nll_per_char: float   # mean NLL (nats) over the name's characters and its end token, at T=1
    nearest: Nearest
    estado: str | None = None   # the state it was generated for (conditioned models only)


@dataclass
class SampleResult:
    names: list[SampledName] = field(default_factory=list)
    requested: int = 0
    draws: int = 0            # sequences sampled, rejected ones included
    stopped: str | None = None   # why it ended short: "budget", "deadline", or a Deadline.stop reason

    @property
    def complete(self) -> bool:
        """False when the budget or the deadline ran out before ``requested`` names were found."""
        return len(self.names) >= self.requested


@dataclass(frozen=True)
class Filters:
    """What every accepted name must satisfy besides novelty; texts compare folded (case and
    accents ignored, spaces at their ends dropped)."""

    suffix: str = ""       # the name ends with it
    contains: str = ""     # the name contains it
    min_length: int = 1    # at least this many characters

    @property
    def ending(self) -> str:
        """The folded ending; "-tepec", as the page writes an ending, is "tepec"."""
        suffix = fold(self.suffix)
        return suffix.lstrip("-") or suffix

    def accepts(self, name: str, key: str) -> bool:
        """``key`` is ``fold(name)``."""
        return (len(name) >= self.min_length and key.endswith(self.ending)
                and fold(self.contains) in key)


def well_formed(name: str | None, nll: float) -> bool:
    """Whether a drawn name can be given at all: finished, not empty, without spaces at its ends
    or a run of them (no real name has one, and a page shows it as one), without a digit (none
    has one either: the models learn them from the course list's four «-Dto. 08 -» district
    notes), and possible under the model (a forced prefix may not be)."""
    return (name is not None and name != "" and name == name.strip() and "  " not in name
            and not any(ch.isdigit() for ch in name) and math.isfinite(nll))


def option_errors(vocab, temperature: float, top_k: int | None, prefix: str,
                  max_length: int, conditions: list[str] | None = None,
                  estado: int | None = None, filters: Filters = Filters()
                  ) -> list[SamplingError]:
    """Every problem with the options, each naming its field, the value and what is allowed."""
    errors = []
    if estado is not None and not conditions:
        errors.append(SamplingError("estado", "not_conditioned",
                                    "this model is not conditioned on the state; omit estado"))
    elif estado is not None and not 0 <= estado < len(conditions):
        errors.append(SamplingError("estado", "out_of_range",
                                    f"estado must be a condition id from 0 to "
                                    f"{len(conditions) - 1}, got {estado}"))
    if not (math.isfinite(temperature) and 0.0 < temperature <= TEMPERATURE_MAX):
        errors.append(SamplingError("temperature", "out_of_range",
                                    f"temperature must be > 0 and <= {TEMPERATURE_MAX}, "
                                    f"got {temperature}"))
    if top_k is not None and top_k < 1:
        errors.append(SamplingError("top_k", "out_of_range",
                                    f"top_k must be >= 1 or omitted, got {top_k}"))
    if not 1 <= max_length <= MAX_LENGTH_LIMIT:
        errors.append(SamplingError("max_length", "out_of_range",
                                    f"max_length must be from 1 to {MAX_LENGTH_LIMIT}, "
                                    f"got {max_length}"))
    if not 1 <= filters.min_length <= max_length:
        errors.append(SamplingError("min_length", "min_over_max",
                                    f"min_length must be from 1 to max_length ({max_length}), "
                                    f"got {filters.min_length}", max_length=max_length))
    first = prefix[:1]   # every real name starts with a capital letter: the model would follow
    if first.islower():  # anything else, and give names no municipality could have
        suggestion = first.upper() + prefix[1:]
        errors.append(SamplingError("prefix", "prefix_lowercase",
                                    f"prefix starts with a lowercase letter: every name starts "
                                    f"with a capital; try {suggestion!r}", suggestion=suggestion))
    elif first and not (first.isupper() or first.isspace() or first.isdigit()):   # own messages
        errors.append(SamplingError("prefix", "prefix_start",
                                    "prefix must start with a capital letter, as every name does"))
    if filters.suffix.strip() and not filters.ending.strip("-"):   # "-" alone: no name ends so
        errors.append(SamplingError("suffix", "suffix_hyphen_only",
                                    "suffix is only a hyphen: write the ending after it, as in "
                                    "'-tepec'"))
    folded_vocab = {fold(ch) or ch for ch in vocab.chars[1:]}   # fold drops a lone space
    for field_name, text in (("prefix", prefix), ("suffix", filters.ending),
                             ("contains", filters.contains)):
        if len(text) > max_length:
            errors.append(SamplingError(field_name, f"{field_name}_too_long",
                                        f"{field_name} has {len(text)} characters, more than "
                                        f"max_length ({max_length})", max_length=max_length))
        # the prefix is written as given; the filters compare folded text
        unknown = (vocab.unknown(text) if field_name == "prefix"
                   else [ch for ch in dict.fromkeys(fold(text)) if ch not in folded_vocab])
        if any(ch.isdigit() for ch in text):   # no name with one is ever given (well_formed)
            errors.append(SamplingError(field_name, f"{field_name}_digit",
                                        f"{field_name} has a digit: no name given ever has one"))
        elif unknown:
            shown = ", ".join(repr(ch) for ch in unknown)
            errors.append(SamplingError(field_name, f"{field_name}_unknown_chars",
                                        f"{field_name} has characters the model never saw: "
                                        f"{shown}", unknown=unknown))
    if prefix != prefix.lstrip() or "  " in prefix:   # no name could start so (sample_steps)
        errors.append(SamplingError("prefix", "prefix_spacing",
                                    "prefix cannot start with a space or have two spaces in a "
                                    "row: no name does"))
    return errors


def check_options(*args, **kwargs) -> None:
    """Raise the first of ``option_errors`` (same arguments), if any."""
    errors = option_errors(*args, **kwargs)
    if errors:
        raise errors[0]


def resolve_estado(model, text: str, gazetteer: Gazetteer | None = None,
                   model_name: str = "this model") -> tuple[Estado, int]:
    """The state named by ``text`` (name or INEGI code, see ``Gazetteer.find_estado``) and its
    condition id in ``model``. Raises SamplingError (field ``estado``) when the model is not
    conditioned on the state, or for a state it does not know, listing the valid ones."""
    conditions = getattr(model, "conditions", None)
    if not conditions:
        raise SamplingError("estado", "not_conditioned",
                            f"{model_name} is not conditioned on the state; omit estado")
    gazetteer = gazetteer or load_gazetteer()
    estado = gazetteer.find_estado(text)
    if estado is None or estado.name not in conditions:
        valid = [e for e in gazetteer.estados if e.name in conditions]
        listed = ", ".join(f"{e.code} {e.name}" for e in valid)
        what = (f"unknown state {text!r}" if estado is None
                else f"{model_name} was not trained on {estado.name!r}")
        raise SamplingError("estado", "unknown_state", f"{what}; valid (name or code): {listed}",
                            value=text, valid=[e.name for e in valid])
    return estado, conditions.index(estado.name)


def condition_weights(model) -> np.ndarray | None:
    """Each condition's share of the draws when none is asked for: in proportion to the counts
    in the checkpoint (municipalities per state), uniform without them; None if unconditioned."""
    conditions = getattr(model, "conditions", None)
    if not conditions:
        return None
    counts = getattr(model, "metadata", {}).get("condition_counts") or [1] * len(conditions)
    counts = np.asarray(counts, dtype=float)
    if counts.shape != (len(conditions),) or not (counts >= 0).all() or not counts.sum() > 0:
        counts = np.ones(len(conditions))
    return counts / counts.sum()


def draw_conditions(model, count: int, rng: np.random.Generator,
                    estado: int | None = None) -> np.ndarray | None:
    """A condition id per draw: ``estado`` for all, else drawn by ``condition_weights``."""
    weights = condition_weights(model)
    if weights is None:
        return None
    if estado is not None:
        return np.full(count, estado, dtype=np.int64)
    # one uniform per draw, by inverse CDF: consecutive calls continue one stream
    cdf = np.cumsum(weights)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(count), side="right"),
                      len(weights) - 1)


def sample_names(model, n: int, rng: np.random.Generator, temperature: float = 0.8,
                 top_k: int | None = None, prefix: str = "",
                 max_length: int = MAX_LENGTH_DEFAULT, novel: bool = True,
                 gazetteer: Gazetteer | None = None, estado: int | None = None,
                 filters: Filters = Filters(), deadline: Deadline | None = None) -> SampleResult:
    """Up to ``n`` distinct names from ``model``; see ``sample_steps`` for the options."""
    return run_to_end(sample_steps(model, n, rng, temperature, top_k, prefix, max_length, novel,
                                   gazetteer, estado, filters, deadline))


def sample_steps(model, n: int, rng: np.random.Generator, temperature: float = 0.8,
                 top_k: int | None = None, prefix: str = "",
                 max_length: int = MAX_LENGTH_DEFAULT, novel: bool = True,
                 gazetteer: Gazetteer | None = None, estado: int | None = None,
                 filters: Filters = Filters(), deadline: Deadline | None = None
                 ) -> Generator[None, None, SampleResult]:
    """``sample_names`` as a generator that yields after every sampling step (see
    ``draw_steps``); see the module docstring for the options.

    temperature: logits are divided by it; T -> 0 approaches the single most likely name,
      T = 1 samples the model as trained, larger T gives wilder names. Allowed: (0, 5].
    top_k: sample only among the k most likely characters at each step (None = all).
    prefix: every name starts with it (after NFC), case and spaces kept; its characters must be
      in the vocabulary, and its first letter a capital, as every real name's is.
    max_length: most characters a name may have (1..64); a name reaching it unfinished is dropped.
    novel: drop names that exist in the real list (folded comparison).
    estado: for a model conditioned on the state, the condition id (index in
      ``model.conditions``) every name is generated for; None draws one per name in proportion
      to ``condition_counts``. Each name's nearest real name is sought in its state first.
    filters: ends with, contains, at least so many characters (see ``Filters``); drawn names
      that fail them are rejected like real ones, within the same draw budget.
    deadline: a fresh ``Deadline``; when it passes (or is stopped), sampling returns the names
      found so far with ``stopped`` set to its reason. None: only the draw budget bounds the work.
    Raises SamplingError for invalid options.
    """
    prefix = unicodedata.normalize("NFC", prefix)
    conditions = getattr(model, "conditions", None)
    check_options(model.vocab, temperature, top_k, prefix, max_length, conditions, estado,
                  filters)
    gazetteer = gazetteer or load_gazetteer()
    # the states come from their own stream, so that the names' stream is not split by rounds
    state_rng = np.random.default_rng(rng.integers(2**63)) if conditions else None
    result = SampleResult(requested=n)
    seen: set[str] = set()
    found: list[tuple[str, str, float, int]] = []   # name, folded key, NLL per char, condition
    budget = max(MIN_DRAWS, DRAWS_PER_NAME * n)
    deadline = deadline or Deadline()
    deadline.start()
    while len(found) < n and result.draws < budget and not deadline.passed():
        # size each round from the acceptance rate so far (at first, what a trained LSTM gives
        # at T=0.8): spare rows cost their share of each step, a second round every step again
        rate = max(len(found) / result.draws, 0.05) if result.draws else 0.9
        count = min(budget - result.draws, math.ceil((n - len(found)) / rate * 1.05) + 4,
                    ROUND_MAX)
        cond = draw_conditions(model, count, state_rng, estado)
        names, nll = yield from draw_steps(model, count, prefix, max_length, temperature, top_k,
                                           rng, cond, deadline)
        result.draws += count
        for name, score, c in zip(names, nll, np.zeros(count, int) if cond is None else cond,
                                  strict=True):
            if not well_formed(name, score):
                continue
            key = fold(name)
            if (key in seen or (novel and key in gazetteer.key_set)
                    or not filters.accepts(name, key)):
                continue
            seen.add(key)
            found.append((name, key, float(score), int(c)))
            if len(found) == n:
                break
    if len(found) < n:
        result.stopped = deadline.reason or "budget"
    states = [conditions[c] if conditions else None for *_, c in found]
    nearest = gazetteer.nearest([key for _, key, _, _ in found], states)
    result.names = [SampledName(name, key not in gazetteer.key_set, score, near, state)
                    for (name, key, score, _), near, state in zip(found, nearest, states,
                                                                  strict=True)]
    return result
