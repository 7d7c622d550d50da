"""The Spanish page at ``/``: a GET form rendered on the server, so it works without JavaScript.

"Inventar nombres" sends ``nueva=1``: the server picks a seed and redirects (303) to the URL
that holds every setting and that seed, so the address bar always repeats the batch on screen
and each batch is a history entry. With JavaScript (``static/app.js``) the same requests are
made in the background with the header ``Toponimo-Parcial: 1``, answered (without a redirect)
with the results part only (``_resultados.html``); the script swaps it in and pushes its URL.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app.data.gazetteer import load_gazetteer
from app.generation.sampling import MAX_LENGTH_LIMIT, TEMPERATURE_MAX
from app.lm.base import model_order
from app.paths import TEMPLATES_DIR
from app.web.credibility import credibility, cutoffs
from app.web.disconnect import watch_disconnect
from app.web.pages.formulario import consulta, form_defaults, form_values, query_values, revisar
from app.web.pages.mapa import CREDIT, mapa_svg
from app.web.pages.textos import MENSAJES, etiqueta, faltantes
from app.web.registry import Registry
from app.web.schemas import MODEL_NAME_MAX, N_MAX, SEED_MAX, TOP_K_MAX, NamesResponse
from app.web.service import generate_names

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True))
PARTIAL_HEADER = "toponimo-parcial"
BASIC_FIELDS = {"", "model", "n", "temperature", "estado"}   # the rest is under "Más opciones"
# an advanced option set away from this opens "Más opciones" (the seed is always set)
ADVANCED_DEFAULTS = {"prefix": "", "suffix": "", "contains": "", "min_length": "1", "top_k": "",
                     "novel": "true"}

router = APIRouter(include_in_schema=False)


def permalink(name: str, model: str, estado: str | None = None) -> str:
    """A name's own page, for the state it was generated for if any."""
    link = f"/nombre/{quote(name, safe='')}?model={quote(model)}"
    return f"{link}&estado={quote(estado)}" if estado else link


def items(registry: Registry, batch: NamesResponse) -> list[dict]:
    """Each name as the page shows it: its credibility and its permalink added."""
    cuts = cutoffs(registry.get(batch.model))
    return [{"name": s.name, "novel": s.novel, "estado": s.estado, "nearest": s.nearest,
             "credibility": credibility(cuts, s.nll_per_char),
             "enlace": permalink(s.name, batch.model, s.estado)} for s in batch.names]


def modelos(registry: Registry) -> list[dict]:
    """The models as the form lists them: the recommended one first."""
    names = sorted(registry.models, key=lambda n: (n != registry.default, model_order(n)))
    return [{"name": n, "etiqueta": etiqueta(registry.models[n], registry.default),
             "descripcion": registry.models[n].description,
             "por_estado": registry.models[n].conditioned} for n in names]


def state_map(registry: Registry, values: dict[str, str], elegido: str) -> Markup | None:
    """The map for choosing the state: each state the conditioned models know links to a new
    batch for it (with a conditioned model, the current one when it is)."""
    if not registry.conditioned:
        return None
    model = values["model"] if values["model"] in registry.conditioned else registry.conditioned[0]
    known = {c for n in registry.conditioned for c in registry.models[n].model.conditions}
    names = {e.code: e.name for e in load_gazetteer().estados if e.name in known}
    svg = mapa_svg(names, "Elige un estado en el mapa", "mapa-estados",
                   link=lambda estado: "/?" + consulta(values, model=model, estado=estado,
                                                        seed="") + "&nueva=1",
                   classes={elegido: "elegido"} if elegido else None, current=elegido)
    return Markup(svg)  # noqa: S704 - built with html.escape()


def estado_elegido(text: str) -> str:
    """The state the selector shows for what the request said ("31", "yucatan" -> "Yucatán")."""
    estado = load_gazetteer().find_estado(text) if text.strip() else None
    return estado.name if estado else ""


SLIDER_STEP = 0.05   # the temperature slider's notches (static/app.js snaps to them too)


def temperature_slider(text: str) -> dict[str, str]:
    """The slider's step, min and the number shown beside it for a temperature as written. A
    valid one between the notches (0.123, or 0.01 below the first) is kept as it is, step "any",
    so that what the form sends again is the temperature of the names on screen."""
    try:
        value = float(text)
    except ValueError:
        return {"step": f"{SLIDER_STEP:g}", "min": f"{SLIDER_STEP:g}", "shown": text}
    notches = value / SLIDER_STEP
    if value >= SLIDER_STEP and abs(notches - round(notches)) < 1e-9:
        return {"step": f"{SLIDER_STEP:g}", "min": f"{SLIDER_STEP:g}", "shown": f"{value:.2f}"}
    return {"step": "any", "min": "0", "shown": f"{value:g}"}


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    """Form plus results; random output, so never cached."""
    registry: Registry = request.app.state.registry
    values = form_values(registry, request)
    partial = request.headers.get(PARTIAL_HEADER) == "1"
    result, errors, status = None, {}, 200
    if not registry.models:
        errors, status = {"": [MENSAJES["sin_modelos"]]}, 503
    else:
        query, errors = revisar(registry, values)
        if query is not None and "nueva" in request.query_params:
            query = query.model_copy(update={"seed": secrets.randbelow(SEED_MAX + 1)})
            if not partial:   # the script pushes the URL itself (data-consulta)
                return RedirectResponse("/?" + consulta(query_values(query, query.seed)),
                                        status_code=303)
        if query is not None:
            async with watch_disconnect(request) as client_gone:
                result = await generate_names(registry, query, request.app.state.sampling_turn,
                                              client_gone)
            values = {**values, **query_values(query, result.seed)}
        else:
            # a model the schema accepts but none loaded has: 404, as in the API
            unknown = "model" in errors and len(values["model"]) <= MODEL_NAME_MAX
            status = 404 if unknown else 422
    elegido = estado_elegido(values.get("estado", ""))
    current = registry.models.get(values["model"])
    context = {
        "models": modelos(registry),
        "estados": load_gazetteer().estados if registry.conditioned else [],
        "estado_elegido": elegido,
        "estado_activo": bool(current and current.conditioned),
        "por_estado": [etiqueta(registry.models[n], registry.default)
                       for n in registry.conditioned],
        "mapa": state_map(registry, values, elegido),
        "credito_mapa": CREDIT,
        "values": values,
        "deslizador": temperature_slider(values["temperature"]),
        "defectos": consulta(form_defaults(registry)),
        "result": result,
        "items": items(registry, result) if result else [],
        "etiqueta_modelo": etiqueta(current, registry.default) if current else "",
        "faltan": (faltantes(len(result.names), result.n_requested, values, result.stopped)
                   if result and not result.complete else ""),
        "consulta": consulta(values) if result else "",
        "errors": errors,
        "abrir_opciones": bool(set(errors) - BASIC_FIELDS) or any(
            values.get(k, "") not in ("", default) for k, default in ADVANCED_DEFAULTS.items()),
        "limits": {"n": N_MAX, "temperature": TEMPERATURE_MAX, "max_length": MAX_LENGTH_LIMIT,
                   "seed": SEED_MAX, "top_k": TOP_K_MAX},
    }
    response = templates.TemplateResponse(request, "_resultados.html" if partial else "index.html",
                                          context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response
