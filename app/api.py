"""JSON routes: /api/names, /api/models, /api/score, /api/estados, and the /healthz and /readyz probes.

Compute routes never block the event loop: sampling runs on it in short slices
(``service.run_in_slices``), scoring on one compute thread (``service.on_compute_thread``).
Bad input is answered by the handlers in ``app.main`` (422 naming the field and range, 404
listing the loaded models), so a route only states its parameters and calls ``app.service``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from app.export import MEDIA_TYPES, download, wanted_format
from app.registry import Registry
from app.schemas import (
    ALLOWED,
    SCORE_NAME_MAX,
    EstadosResponse,
    Failure,
    Health,
    ModelsResponse,
    NamesQuery,
    NamesResponse,
    Readiness,
    ScoreResponse,
)
from app.service import (
    generate_names,
    list_estados,
    model_info,
    on_compute_thread,
    score_name,
)

router = APIRouter()

ERRORS = {
    404: {"description": "Unknown model; the detail lists the loaded ones."},
    422: {"description": "Invalid parameter; each detail names the field and what is allowed."},
}


async def get_registry(request: Request) -> Registry:
    # async: resolving it must not cost a trip through the threadpool
    return request.app.state.registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


@router.get("/api/names", response_model=NamesResponse, tags=["api"], responses={
    **ERRORS, 200: {"content": {media: {} for media in MEDIA_TYPES.values()},
                    "description": "The names as JSON, or as a CSV or text file to download."}})
async def names(query: Annotated[NamesQuery, Query()], registry: RegistryDep, request: Request,
                response: Response,
                format: Annotated[Literal["json", "csv", "txt"] | None, Query(
                    description="json (default), csv or txt (one name per line); without it "
                                "an Accept header of text/csv or text/plain chooses.")] = None,
                ) -> NamesResponse | Response:
    """Invent names with a model. Random output: sent with `Cache-Control: no-store`."""
    response.headers["Cache-Control"] = "no-store"
    batch = await generate_names(registry, query, request.app.state.sampling_turn)
    fmt = wanted_format(format, request.headers.get("accept", ""))
    return batch if fmt == "json" else download(batch, fmt)


@router.get("/api/models", response_model=ModelsResponse, tags=["api"])
async def models(registry: RegistryDep) -> ModelsResponse:
    """Every loaded model with its kind, hyperparameters, size, validation NLL and data hash."""
    return ModelsResponse(default=registry.default,
                          models=[model_info(s) for s in registry.models.values()])


@router.get("/api/estados", response_model=EstadosResponse, tags=["api"])
async def estados(registry: RegistryDep) -> EstadosResponse:
    """The states (code, name, municipalities) that `estado` accepts, from the data, and the
    loaded models conditioned on the state."""
    return list_estados(registry)


@router.get("/api/score", response_model=ScoreResponse, responses=ERRORS, tags=["api"])
async def score(name: Annotated[str, Query(min_length=1, max_length=SCORE_NAME_MAX,
                                           description=f"The name to score: {ALLOWED['name']}.")],
                registry: RegistryDep,
                model: Annotated[str, Query(description=ALLOWED["model"])] = "lstm"
                ) -> ScoreResponse:
    """How likely the model finds a name, and its percentile among the real names."""
    return await on_compute_thread(score_name, registry, model, name)


@router.get("/healthz", response_model=Health, tags=["probes"])
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, tags=["probes"],
            responses={503: {"model": Readiness, "description": "No model could be loaded."}})
async def readyz(registry: RegistryDep, response: Response) -> Readiness:
    """Ready when at least one model is loaded; lists files that failed to load and why."""
    ready = bool(registry.models)
    if not ready:
        response.status_code = 503
    return Readiness(ready=ready, models=sorted(registry.models),
                     failures=[Failure(file=f, reason=r) for f, r in registry.failures.items()])
