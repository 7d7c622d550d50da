"""What the API and the page both do with a request, free of HTTP: sample, describe, score.

Errors are raised as ``registry.UnknownModel``, ``sampling.SamplingError`` and
``scheduler.Overloaded``; each web layer turns them into its own answer (JSON 404/422/503, or
Spanish text on the page).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.data.corpus import normalize
from app.data.gazetteer import Estado, Gazetteer, load_gazetteer
from app.generation.sampling import DRAWS_PER_NAME, MIN_DRAWS, SamplingError, resolve_estado, sample_steps
from app.web.published import held_out_nll
from app.web.registry import Registry, ServedModel
from app.web.scheduler import Overloaded, Scheduler
from app.web.schemas import (
    SEED_MAX,
    CharProbability,
    EstadoOut,
    EstadosResponse,
    ModelInfo,
    NamesQuery,
    NamesResponse,
    ScoreResponse,
)

# Sampling runs on the event loop itself, in slices (see app.web.scheduler). Scoring runs on this
# one thread, one request at a time in arrival order; the handlers await it.
COMPUTE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toponimo-compute")
COMPUTE_QUEUE_LIMIT = 16   # scoring requests waiting or running; beyond it, 503 at once


class _ComputeQueue:
    """How many requests wait for the compute thread: bounded, so a flood of scoring requests
    gets fast 503s instead of a queue that keeps the thread busy long after its clients left."""

    def __init__(self):
        self.pending = 0


COMPUTE_QUEUE = _ComputeQueue()


async def on_compute_thread(fn, /, *args):
    """``fn(*args)`` on the compute thread, awaited from the event loop; raises Overloaded when
    ``COMPUTE_QUEUE_LIMIT`` requests already wait for it."""
    if COMPUTE_QUEUE.pending >= COMPUTE_QUEUE_LIMIT:
        raise Overloaded(f"{COMPUTE_QUEUE.pending} scoring requests are already queued; retry")
    COMPUTE_QUEUE.pending += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(
            COMPUTE, functools.partial(fn, *args))
    finally:
        COMPUTE_QUEUE.pending -= 1


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


async def generate_names(registry: Registry, query: NamesQuery, scheduler: Scheduler,
                         client_gone: Callable[[], bool] | None = None
                         ) -> NamesResponse:
    """Sample as ``query`` asks, taking turns through ``scheduler`` (bounded queue, deadline,
    dropped when ``client_gone()`` says the client left)."""
    served = registry.get(query.model)
    gazetteer = load_gazetteer()
    estado, estado_id = None, None
    if query.estado is not None and query.estado.strip():
        estado, estado_id = find_estado(registry, served, query.estado, gazetteer)
    seed = secrets.randbelow(SEED_MAX + 1) if query.seed is None else query.seed
    result, seconds = await scheduler.run(lambda deadline: sample_steps(
        served.model, query.n, np.random.default_rng(seed), temperature=query.temperature,
        top_k=query.top_k, prefix=query.prefix, max_length=query.max_length,
        novel=query.novel, gazetteer=gazetteer, estado=estado_id, filters=query.filters,
        deadline=deadline), client_gone, heavy=is_heavy(query.n))
    if result.stopped == "shutdown" and not result.names:
        # cut by a shutdown before a name was found: a 503 lets a proxy retry on another worker,
        # where an empty 200 would be passed on as the answer
        raise Overloaded("this worker is shutting down; retry")
    return NamesResponse(model=served.name, estado=estado.name if estado else None,
                         temperature=query.temperature, seed=seed,
                         n_requested=query.n, complete=result.complete, stopped=result.stopped,
                         draws=result.draws,
                         names=[{"name": s.name, "novel": s.novel, "nll_per_char": s.nll_per_char,
                                 "nearest": vars(s.nearest), "estado": s.estado}
                                for s in result.names],
                         elapsed_ms=round(seconds * 1000, 3))


def is_heavy(n: int) -> bool:
    """A request whose draw budget exceeds the minimum: it may compute up to its deadline."""
    return DRAWS_PER_NAME * n > MIN_DRAWS


def list_estados(registry: Registry, gazetteer: Gazetteer | None = None) -> EstadosResponse:
    """The states of the data (not of a model), with the loaded models that accept them."""
    estados = (gazetteer or load_gazetteer()).estados
    return EstadosResponse(estados=[EstadoOut(**vars(e)) for e in estados],
                           total_municipios=sum(e.municipios for e in estados),
                           conditioned_models=registry.conditioned)


def model_info(served: ServedModel, cv_rows: list[dict]) -> ModelInfo:
    """What /api/models says of a model; its NLL is ``published.held_out_nll``'s, so ``cv_rows``
    (the folder's published cross-validation) decides it where they name the model."""
    meta = served.model.metadata
    metrics = meta.get("metrics", {})
    val_nll, source = held_out_nll(served.name, metrics.get("val_nll"),
                                   "distillation" in meta, cv_rows)
    return ModelInfo(name=served.name, kind=served.model.kind, description=served.description,
                     hyperparameters=meta.get("config", {}),
                     train_config=meta.get("train_config", {}),
                     n_params=served.model.n_params, vocab_size=len(served.model.vocab),
                     val_nll=val_nll, val_nll_source=source,
                     train_seconds=metrics.get("train_seconds"),
                     data_sha256=meta.get("data_sha256"))


def score_name(registry: Registry, model: str | None, name: str,
               estado: str | None = None) -> ScoreResponse:
    """``name`` scored by a model; a state-conditioned one scores it for ``estado`` (as its
    names for that state were), or for the state under which it is likeliest."""
    served = registry.get(model)
    cond = None
    if estado and estado.strip():
        cond = find_estado(registry, served, estado, load_gazetteer())[1]
    name = normalize(name)
    if not name:
        raise SamplingError("name", "empty", "name is empty after removing surrounding spaces")
    unknown = served.model.vocab.unknown(name)
    if unknown:
        shown = ", ".join(repr(ch) for ch in unknown)
        raise SamplingError("name", "unknown_chars",
                            f"name has characters the model never saw: {shown}", unknown=unknown)
    token_nll, cond = served.token_nll(name, cond)
    nll = float(token_nll.mean())
    probabilities = np.exp(-token_nll).tolist()
    return ScoreResponse(model=served.name, name=name, nll_per_char=nll,
                         estado=None if cond is None else served.model.conditions[cond],
                         percentile=served.percentile(nll), n_reference=len(served.real_nll),
                         characters=[CharProbability(char=c, probability=p)
                                     for c, p in zip(name, probabilities[:-1], strict=True)],
                         end_probability=probabilities[-1])
