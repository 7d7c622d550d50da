"""The web app: builds FastAPI, loads the models at start-up, turns errors into clear answers.

    uvicorn app.main:app          # or: python -m app

Models come from ``models/`` or from $TOPONIMO_MODELS_DIR (see ``app.registry``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from app import api, compare, nombre, pages
from app.gazetteer import load_gazetteer
from app.registry import UnknownModel, load_registry, models_dir
from app.sampling import SamplingError
from app.schemas import ALLOWED

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_UI = "/swagger-ui"   # Swagger UI's JS and CSS, served from the fastapi-swagger package

DESCRIPTION = """Inventa nombres creíbles de municipios mexicanos con redes recurrentes (RNN y LSTM)
escritas desde cero en numpy. Invents credible Mexican municipality names.

Every parameter states its allowed range; a bad value gets a 422 whose `detail` names the field
and the range, an unknown model a 404 listing the loaded ones."""


def _error(field: str, message: str, kind: str, loc_kind: str = "query", **extra) -> dict:
    """One entry of FastAPI's ``detail`` list, its message ending with what is allowed."""
    allowed = ALLOWED.get(field)
    msg = f"{field}: {message}" + (f"; allowed: {allowed}" if allowed else "")
    return {"loc": [loc_kind, field], "msg": msg, "type": kind, **extra}


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = []
    for err in exc.errors():
        loc = err.get("loc", ())
        field = str(loc[-1]) if loc else "request"
        message = err["msg"] + (f", got {err['input']!r}" if err.get("input") is not None else "")
        detail.append(_error(field, message, err["type"], str(loc[0]) if loc else "query"))
    return JSONResponse(status_code=422, content=jsonable_encoder({"detail": detail}))


async def sampling_error(request: Request, exc: SamplingError) -> JSONResponse:
    entry = _error(exc.field, str(exc), exc.code, ctx=exc.context)
    return JSONResponse(status_code=422, content=jsonable_encoder({"detail": [entry]}))


async def unknown_model(request: Request, exc: UnknownModel) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc),
                                                  "available": exc.available})


def create_app(models_folder: Path | None = None) -> FastAPI:
    """The app; models are loaded from ``models_folder`` (default: ``models_dir()``) at start."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # sampling matmuls are small: one BLAS thread per worker beats threads fighting for cores
        threadpool_limits(limits=1, user_api="blas")
        app.state.registry = load_registry(models_folder or models_dir(), load_gazetteer())
        app.state.sampling_turn = asyncio.Lock()   # one sampling at a time, in arrival order
        yield

    # FastAPI's own /docs and /redoc load their scripts from a CDN: blank on a closed network
    app = FastAPI(title="Toponimo", description=DESCRIPTION, version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(SamplingError, sampling_error)
    app.add_exception_handler(UnknownModel, unknown_model)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(SWAGGER_UI, StaticFiles(packages=[("fastapi_swagger", "resources")]),
              name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The interactive API reference, its files served by this app itself."""
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="Toponimo: API",
                                   swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png")

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(compare.router)
    app.include_router(nombre.router)
    return app


logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
app = create_app()
