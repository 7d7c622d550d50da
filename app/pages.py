"""The Spanish page at ``/``: a GET form rendered on the server, so it works without JavaScript.

With JavaScript (``static/app.js``) the same form updates the list in place through
``/api/names``; the Spanish error texts below are handed to the script in the page.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from app.gazetteer import load_gazetteer
from app.registry import Registry, UnknownModel
from app.sampling import MAX_LENGTH_LIMIT, TEMPERATURE_MAX, SamplingError
from app.schemas import N_MAX, SEED_MAX, TOP_K_MAX, NamesQuery
from app.service import generate_names

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True))

router = APIRouter(include_in_schema=False)

# keyed by error code first, then by field; {placeholders} are filled from the error's context
MENSAJES = {
    "model": "Modelo: elige uno de los modelos cargados ({disponibles}).",
    "n": f"Cuántos: escribe un número entero del 1 al {N_MAX}.",
    "temperature": f"Temperatura: un número mayor que 0 y como máximo {TEMPERATURE_MAX:g}.",
    "prefix": f"Empieza con: como máximo {MAX_LENGTH_LIMIT} caracteres.",
    "prefix_too_long": "Empieza con: no puede tener más letras que el largo máximo "
                       "({max_length}).",
    "prefix_unknown_chars": "Empieza con: el modelo no conoce estos caracteres: {chars}.",
    "seed": f"Semilla: escribe un número entero del 0 al {SEED_MAX}, o déjala vacía.",
    "top_k": f"Top-k: escribe un número entero del 1 al {TOP_K_MAX}, o déjalo vacío.",
    "max_length": f"Largo máximo: escribe un número entero del 1 al {MAX_LENGTH_LIMIT}.",
    "novel": "Solo nombres nuevos: marca o desmarca la casilla.",
    "estado": "Estado: elige uno de la lista o «todo México».",
    "unknown_state": "Estado: «{value}» no es un estado de la lista; elige uno o «todo México».",
    "not_conditioned": "Estado: el modelo {model} no distingue estados; elige «todo México» o "
                       "un modelo entrenado por estado ({conditioned}).",
    "sin_modelos": "No hay ningún modelo cargado, así que no se pueden inventar nombres ahora.",
    "red": "No se pudo hablar con el servidor; inténtalo de nuevo.",
    "desconocido": "Algo salió mal con esos datos; revisa el formulario.",
}


def mensaje(field: str, code: str = "", **context) -> str:
    """The Spanish text for an error; mirrors ``mensaje`` in static/app.js."""
    if "unknown" in context:
        context["chars"] = ", ".join(f"«{ch}»" for ch in context["unknown"])
    template = MENSAJES.get(code) or MENSAJES.get(field) or MENSAJES["desconocido"]
    try:
        return template.format(**context)
    except KeyError:
        return template


def form_values(registry: Registry, request: Request) -> dict[str, str]:
    """What the form shows: the request's values over the defaults (as strings)."""
    defaults = NamesQuery().model_dump()
    values = {key: "" if value is None else str(value) for key, value in defaults.items()}
    values["model"] = registry.default or ""
    values.update(request.query_params)
    # the form sends a hidden novel=false and, when the box is ticked, novel=true after it
    novel = request.query_params.getlist("novel")
    if novel:
        values["novel"] = "true" if any(v in ("true", "on", "1") for v in novel) else novel[-1]
    return values


def estado_elegido(text: str) -> str:
    """The state the selector shows for what the request said ("31", "yucatan" -> "Yucatán")."""
    estado = load_gazetteer().find_estado(text) if text.strip() else None
    return estado.name if estado else ""


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    """Form plus results; random output, so never cached."""
    registry: Registry = request.app.state.registry
    values = form_values(registry, request)
    result, errors, status = None, [], 200
    if not registry.models:
        errors, status = [MENSAJES["sin_modelos"]], 503
    else:
        try:
            query = NamesQuery.model_validate(values)
            result = await generate_names(registry, query, request.app.state.sampling_turn)
        except ValidationError as exc:
            errors = list(dict.fromkeys(mensaje(str(e["loc"][-1]) if e["loc"] else "")
                                        for e in exc.errors()))
            status = 422
        except SamplingError as exc:
            errors, status = [mensaje(exc.field, exc.code, **exc.context)], 422
        except UnknownModel as exc:
            errors = [mensaje("model", disponibles=", ".join(exc.available))]
            status = 404
    context = {
        "models": list(registry.models.values()),
        "estados": load_gazetteer().estados if registry.conditioned else [],
        "estado_elegido": estado_elegido(values.get("estado", "")),
        "por_estado": registry.conditioned,
        "values": values,
        "result": result,
        "errors": errors,
        "mensajes": MENSAJES,
        "limits": {"n": N_MAX, "temperature": TEMPERATURE_MAX, "max_length": MAX_LENGTH_LIMIT,
                   "seed": SEED_MAX},
    }
    response = templates.TemplateResponse(request, "index.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
