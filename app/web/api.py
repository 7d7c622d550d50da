"""JSON routes: /api/names, /api/models, /api/score, /api/estados, and the /healthz and /readyz probes.

Compute routes never block the event loop: sampling runs on it in short slices, taking turns
through ``app.web.scheduler`` (bounded queue: 503 beyond it), scoring on one compute thread
(``service.on_compute_thread``).
Bad input is answered by the handlers in ``app.main`` (422 naming the field and range, 404
listing the loaded models), so a route only states its parameters and calls ``app.web.service``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from app.web.disconnect import watch_disconnect
from app.web.export import FORMAT_NAME, MEDIA_TYPES, download, wanted_format
from app.web.published import cv_rows
from app.web.registry import Registry
from app.web.scheduler import Scheduler
from app.web.schemas import (
    ALLOWED,
    ESTADO_MAX,
    MODEL_DESCRIPTION,
    MODEL_NAME_MAX,
    NFC,
    SCORE_NAME_MAX,
    EmptyMeansDefault,
    EstadosResponse,
    Failure,
    Health,
    InvalidRequest,
    ModelsResponse,
    NamesQuery,
    NamesResponse,
    Readiness,
    ScoreResponse,
    Unavailable,
    UnknownModelError,
)
from app.web.service import (
    generate_names,
    list_estados,
    model_info,
    on_compute_thread,
    score_name,
)

router = APIRouter()

ERRORS = {
    404: {"model": UnknownModelError,
          "description": "Unknown model; `available` lists the loaded ones."},
    422: {"model": InvalidRequest,
          "description": "Invalid parameter; each detail names the field and what is allowed."},
}
BUSY = {503: {"model": Unavailable,
              "description": "The worker is saturated, shutting down or has no model loaded: "
                             "retry after the seconds in `Retry-After` (elsewhere, behind a "
                             "balancer)."}}


async def get_registry(request: Request) -> Registry:
    # async: resolving it must not cost a trip through the threadpool
    return request.app.state.registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


@router.get("/api/names", response_model=NamesResponse, tags=["api"], responses={
    **ERRORS, **BUSY,
    200: {"content": {media: {} for media in MEDIA_TYPES.values()},
          "description": "The names as JSON, or as a CSV or text file to download."}})
async def names(query: Annotated[NamesQuery, Query()], registry: RegistryDep, request: Request,
                response: Response,
                format: Annotated[Literal["json", "csv", "txt"] | None, FORMAT_NAME,
                                  EmptyMeansDefault(), Query(
                    description="json (default), csv or txt (one name per line); "
                                "without it (or empty) the Accept header chooses, by its "
                                "q-values.")] = None,
                ) -> NamesResponse | Response:
    """Invent names with a model. Random output: sent with `Cache-Control: no-store`.

    Each request may compute for a limited time; past it, the answer holds the names found so
    far with `complete: false` and `stopped: "deadline"`. A worker busy with too many requests
    answers 503 at once, with `Retry-After`."""
    response.headers["Cache-Control"] = "no-store"
    async with watch_disconnect(request) as client_gone:
        batch = await generate_names(registry, query, request.app.state.sampling_turn,
                                     client_gone)
    fmt = wanted_format(format, request.headers.get("accept", ""))
    return batch if fmt == "json" else download(batch, fmt)


@router.get("/api/models", response_model=ModelsResponse, tags=["api"])
async def models(registry: RegistryDep) -> ModelsResponse:
    """Every loaded model with its kind, hyperparameters, size, NLL on unseen names and data
    hash."""
    rows = cv_rows(registry.folder)
    return ModelsResponse(default=registry.default,
                          models=[model_info(s, rows) for s in registry.models.values()])


@router.get("/api/estados", response_model=EstadosResponse, tags=["api"])
async def estados(registry: RegistryDep) -> EstadosResponse:
    """The states (code, name, municipalities) that `estado` accepts, from the data, and the
    loaded models conditioned on the state."""
    return list_estados(registry)


@router.get("/api/score", response_model=ScoreResponse, responses={**ERRORS, **BUSY},
            tags=["api"])
async def score(name: Annotated[str, Query(min_length=1, max_length=SCORE_NAME_MAX,
                                           description=f"The name to score: {ALLOWED['name']}."),
                                NFC],
                registry: RegistryDep,
                model: Annotated[str | None, Query(max_length=MODEL_NAME_MAX,
                                                   description=MODEL_DESCRIPTION)] = None,
                estado: Annotated[str | None, Query(max_length=ESTADO_MAX, description=(
                    f"For a model conditioned on the state, score the name for this state: "
                    f"{ALLOWED['estado']}. Without it, the state under which the name is "
                    "likeliest."))] = None,
                ) -> ScoreResponse:
    """How likely the model finds a name, and its percentile among the real names (scored
    under their own states by a conditioned model)."""
    return await on_compute_thread(score_name, registry, model, name, estado)


@router.get("/healthz", response_model=Health, tags=["probes"])
async def healthz() -> Health:
    """Liveness: the process answers. Stays 200 while busy (restart only what is stuck)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, tags=["probes"],
            responses={503: {"model": Readiness, "description": "Not ready: no model loaded, "
                                                                "saturated, or shutting down."}})
async def readyz(registry: RegistryDep, request: Request, response: Response) -> Readiness:
    """Readiness: send traffic here only while 200. Not ready (503) when no model could be
    loaded, while the worker is saturated, or once it is shutting down; `reason` says which,
    and `failures` lists the files that failed to load and why."""
    scheduler: Scheduler = request.app.state.sampling_turn
    reason = None
    if not registry.models:
        reason = "no model could be loaded (see failures)"
    elif scheduler.draining:
        reason = "shutting down"
    elif scheduler.saturated:
        reason = (f"saturated: {scheduler.busy} requests in progress ({scheduler.heavy} large), "
                  "the most this worker takes")
    if reason:
        response.status_code = 503
    return Readiness(ready=reason is None, reason=reason, models=sorted(registry.models),
                     busy=scheduler.busy, capacity=scheduler.capacity,
                     failures=[Failure(file=f, reason=r) for f, r in registry.failures.items()])
