"""What the API and the page both do with a request, free of HTTP: sample, describe, score.

Errors are raised as ``registry.UnknownModel`` and ``sampling.SamplingError``; each web layer
turns them into its own answer (JSON 404/422, or Spanish text on the page).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from app.corpus import normalize
from app.gazetteer import Estado, Gazetteer, load_gazetteer
from app.registry import Registry, ServedModel
from app.sampling import SamplingError, resolve_estado, sample_steps
from app.schemas import (
    SEED_MAX,
    CharProbability,
    EstadoOut,
    EstadosResponse,
    ModelInfo,
    NamesQuery,
    NamesResponse,
    ScoreResponse,
)

T = TypeVar("T")

# Sampling runs on the event loop itself, in slices (see run_in_slices). Scoring runs on this
# one thread, one request at a time in arrival order; the handlers await it.
COMPUTE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toponimo-compute")
SLICE_SECONDS = 0.001   # how long sampling keeps the event loop before handing it back


async def on_compute_thread(fn, /, *args):
    """``fn(*args)`` on the compute thread, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(COMPUTE, functools.partial(fn, *args))


async def run_in_slices(steps: Generator[None, None, T], slice_seconds: float = SLICE_SECONDS
                        ) -> tuple[T, float]:
    """Drive a step generator (``sampling.sample_steps``) on the event loop, handing the loop
    back whenever a slice of steps has run for ``slice_seconds`` (so the loop waits at most that
    plus one step). Returns the generator's value and the seconds of work it took.

    Why not a thread: sampling is many small numpy calls, and each one hands the GIL over to
    the event loop's thread and back. In alternating load-benchmark runs, one worker that
    sampled on a thread served 54-75% of its compute limit; sampling in slices, 73-84%.
    """
    busy = 0.0
    while True:
        start = time.perf_counter()
        try:
            while time.perf_counter() - start < slice_seconds:
                next(steps)
        except StopIteration as done:
            return done.value, busy + time.perf_counter() - start
        busy += time.perf_counter() - start
        await asyncio.sleep(0)


def find_estado(registry: Registry, served: ServedModel, text: str,
                gazetteer: Gazetteer) -> tuple[Estado, int]:
    """``sampling.resolve_estado``, naming the loaded conditioned models when ``served`` is not."""
    if not served.conditioned:
        conditioned = registry.conditioned
        listed = ", ".join(conditioned) or "none is loaded"
        raise SamplingError("estado", "not_conditioned",
                            f"model {served.name!r} is not conditioned on the state; models that "
                            f"are: {listed}", model=served.name,
                            conditioned=", ".join(conditioned) or "—")
    return resolve_estado(served.model, text, gazetteer, f"model {served.name!r}")


async def generate_names(registry: Registry, query: NamesQuery,
                         turn: asyncio.Lock) -> NamesResponse:
    """Sample as ``query`` asks, once ``turn`` is free (one sampling at a time, in arrival order:
    each request waits for those before it rather than all of them slowing down together)."""
    served = registry.get(query.model)
    gazetteer = load_gazetteer()
    estado, estado_id = None, None
    if query.estado is not None and query.estado.strip():
        estado, estado_id = find_estado(registry, served, query.estado, gazetteer)
    seed = secrets.randbelow(SEED_MAX + 1) if query.seed is None else query.seed
    async with turn:
        result, seconds = await run_in_slices(sample_steps(
            served.model, query.n, np.random.default_rng(seed), temperature=query.temperature,
            top_k=query.top_k, prefix=query.prefix, max_length=query.max_length,
            novel=query.novel, gazetteer=gazetteer, estado=estado_id, filters=query.filters))
    return NamesResponse(model=served.name, estado=estado.name if estado else None,
                         temperature=query.temperature, seed=seed,
                         n_requested=query.n, complete=result.complete, draws=result.draws,
                         names=[{"name": s.name, "novel": s.novel, "nll_per_char": s.nll_per_char,
                                 "nearest": vars(s.nearest), "estado": s.estado}
                                for s in result.names],
                         elapsed_ms=round(seconds * 1000, 3))


def list_estados(registry: Registry, gazetteer: Gazetteer | None = None) -> EstadosResponse:
    """The states of the data (not of a model), with the loaded models that accept them."""
    estados = (gazetteer or load_gazetteer()).estados
    return EstadosResponse(estados=[EstadoOut(**vars(e)) for e in estados],
                           total_municipios=sum(e.municipios for e in estados),
                           conditioned_models=registry.conditioned)


def model_info(served: ServedModel) -> ModelInfo:
    meta = served.model.metadata
    metrics = meta.get("metrics", {})
    return ModelInfo(name=served.name, kind=served.model.kind, description=served.description,
                     hyperparameters=meta.get("config", {}),
                     train_config=meta.get("train_config", {}),
                     n_params=served.model.n_params, vocab_size=len(served.model.vocab),
                     val_nll=metrics.get("val_nll"), train_seconds=metrics.get("train_seconds"),
                     data_sha256=meta.get("data_sha256"))


def score_name(registry: Registry, model: str, name: str) -> ScoreResponse:
    served = registry.get(model)
    name = normalize(name)
    if not name:
        raise SamplingError("name", "empty", "name is empty after removing surrounding spaces")
    unknown = served.model.vocab.unknown(name)
    if unknown:
        shown = ", ".join(repr(ch) for ch in unknown)
        raise SamplingError("name", "unknown_chars",
                            f"name has characters the model never saw: {shown}", unknown=unknown)
    token_nll = served.token_nll(name)
    nll = float(token_nll.mean())
    probabilities = np.exp(-token_nll).tolist()
    return ScoreResponse(model=served.name, name=name, nll_per_char=nll,
                         percentile=served.percentile(nll), n_reference=len(served.real_nll),
                         characters=[CharProbability(char=c, probability=p)
                                     for c, p in zip(name, probabilities[:-1], strict=True)],
                         end_probability=probabilities[-1])
