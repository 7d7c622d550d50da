"""The web app: builds FastAPI, loads the models at start-up, turns errors into clear answers.

    uvicorn app.main:app          # or: python -m app

Models come from ``models/`` or from $TOPONIMO_MODELS_DIR (see ``app.web.registry``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from threadpoolctl import threadpool_limits

from app.data.gazetteer import load_gazetteer
from app.generation.sampling import SamplingError
from app.paths import STATIC_DIR
from app.web import api
from app.web.middleware import (
    SECURITY_HEADERS,
    HeadAsGet,
    SecurityHeaders,
    ShedLoad,
    answers_json,
    busy_response,
    csp_allowing_inline_scripts,
)
from app.web.pages import compare, home, nombre
from app.web.pages.error import status_page
from app.web.registry import UnknownModel, load_registry, models_dir
from app.web.scheduler import ClientGone, Overloaded, Scheduler, deadline_seconds
from app.web.schemas import ALLOWED

GZIP_MIN_BYTES = 1000   # smaller answers gain little from compression
SWAGGER_UI = "/swagger-ui"   # Swagger UI's JS and CSS, served from the fastapi-swagger package
ECHO_MAX = 80   # characters of a rejected input that an error message repeats

DESCRIPTION = """Inventa nombres creíbles de municipios mexicanos con redes recurrentes (RNN y LSTM)
escritas desde cero en numpy. Invents credible Mexican municipality names.

Every parameter states its allowed range; a bad value gets a 422 whose `detail` names the field
and the range, an unknown model a 404 listing the loaded ones."""


def _error(field: str, message: str, kind: str, loc_kind: str = "query", **extra) -> dict:
    """One entry of FastAPI's ``detail`` list, its message ending with what is allowed."""
    allowed = ALLOWED.get(field)
    msg = f"{field}: {message}" + (f"; allowed: {allowed}" if allowed else "")
    return {"loc": [loc_kind, field], "msg": msg, "type": kind, **extra}


def echoed(value, limit: int = ECHO_MAX) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error names what it got without
    sending a 5,000-character input back."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = []
    for err in exc.errors():
        loc = err.get("loc", ())
        field = str(loc[-1]) if loc else "request"
        message = err["msg"] + (f", got {echoed(err['input'])}" if err.get("input") is not None
                                else "")
        detail.append(_error(field, message, err["type"], str(loc[0]) if loc else "query"))
    return JSONResponse(status_code=422, content=jsonable_encoder({"detail": detail}))


async def sampling_error(request: Request, exc: SamplingError) -> JSONResponse:
    entry = _error(exc.field, str(exc), exc.code, ctx=exc.context)
    return JSONResponse(status_code=422, content=jsonable_encoder({"detail": [entry]}))


async def unknown_model(request: Request, exc: UnknownModel) -> Response:
    if not exc.available:   # no model loaded at all: this worker cannot serve, another may
        return busy_response(request.url.path, str(exc))
    return JSONResponse(status_code=404, content={"detail": str(exc),
                                                  "available": exc.available})


async def overloaded(request: Request, exc: Overloaded) -> Response:
    return busy_response(request.url.path, str(exc))


async def client_gone(request: Request, exc: ClientGone) -> Response:
    return Response(status_code=503)   # nobody is left to read it; the access log shows it


async def http_error(request: Request, exc: HTTPException) -> Response:
    """An unknown address or method: FastAPI's JSON under /api/ and on the probes, a Spanish
    page elsewhere. A 405's Allow lists HEAD beside GET: ``HeadAsGet`` answers it wherever GET is."""
    allow = (exc.headers or {}).get("Allow", "")
    if "GET" in allow.split(", ") and "HEAD" not in allow:
        exc = HTTPException(exc.status_code, exc.detail, {**exc.headers, "Allow": f"{allow}, HEAD"})
    if answers_json(request.url.path):
        return await http_exception_handler(request, exc)
    return status_page(request, exc.status_code, exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """A bug: JSON under /api/ and on the probes, a Spanish page elsewhere; the server still
    logs the traceback.
    Starlette answers it outside every middleware, so the security headers are added here."""
    if answers_json(request.url.path):
        response = JSONResponse(status_code=500, content={"detail": "internal server error"})
    else:
        response = status_page(request, 500)
    response.headers.update(SECURITY_HEADERS)
    return response


def drain_on_signals(scheduler: Scheduler) -> None:
    """On SIGTERM or SIGINT, drain ``scheduler`` and then let the server's own handler stop it
    (uvicorn stops accepting and waits for open requests, which draining makes short)."""
    if threading.current_thread() is not threading.main_thread():
        return   # e.g. under TestClient: no signals to watch
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue   # no server handler to chain to: keep the default behaviour
        def handler(signum, frame, previous=previous):
            loop.call_soon_threadsafe(scheduler.drain)
            previous(signum, frame)
        signal.signal(sig, handler)


def document_default_model(app: FastAPI) -> None:
    """Make /openapi.json give the registry's default model as the default of each ``model``
    parameter (the schema itself can only say "omitted: the server's default")."""
    base = app.openapi

    def openapi() -> dict:
        schema = base()   # built once, then cached by FastAPI
        registry = getattr(app.state, "registry", None)
        if registry is not None and registry.default:
            for operation in (path["get"] for path in schema["paths"].values() if "get" in path):
                for param in operation.get("parameters", []):
                    if param["name"] == "model":
                        param["schema"]["default"] = registry.default
        return schema

    app.openapi = openapi


def create_app(models_folder: Path | None = None) -> FastAPI:
    """The app; models are loaded from ``models_folder`` (default: ``models_dir()``) at start."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # a bad $TOPONIMO_DEADLINE_SECONDS fails the start-up at once, not after the models load
        deadline = deadline_seconds()
        # sampling matmuls are small: one BLAS thread per worker beats threads fighting for cores
        threadpool_limits(limits=1, user_api="blas")
        app.state.registry = load_registry(models_folder or models_dir(), load_gazetteer())
        app.state.sampling_turn = Scheduler(deadline_seconds=deadline)   # admission, turns
        drain_on_signals(app.state.sampling_turn)
        yield

    # FastAPI's own /docs and /redoc load their scripts from a CDN: blank on a closed network
    # no redirect_slashes: Starlette builds those redirects from the request's Host header
    app = FastAPI(title="Toponimo", description=DESCRIPTION, version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, redirect_slashes=False)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(SamplingError, sampling_error)
    app.add_exception_handler(UnknownModel, unknown_model)
    app.add_exception_handler(Overloaded, overloaded)
    app.add_exception_handler(ClientGone, client_gone)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
    # outermost last: HEAD becomes GET, every answer gets the security headers, a saturated
    # worker sheds sampling before any parsing, and what passes is compressed
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(ShedLoad)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(SWAGGER_UI, StaticFiles(packages=[("fastapi_swagger", "resources")]),
              name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The interactive API reference, its files served by this app itself."""
        page = get_swagger_ui_html(openapi_url=app.openapi_url, title="Toponimo: API",
                                   swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png")
        page.headers["Content-Security-Policy"] = csp_allowing_inline_scripts(page.body.decode())
        return page

    app.include_router(api.router)
    app.include_router(home.router)
    app.include_router(compare.router)
    app.include_router(nombre.router)
    document_default_model(app)
    return app


logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
app = create_app()
