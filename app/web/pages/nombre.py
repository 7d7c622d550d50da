"""A name's own page, ``/nombre/<texto>?model=lstm``: how credible it sounds, how surprising each
letter is, the real municipalities closest to it (with their states, on the map) and which state
it sounds like to the fidelity judge (``app.eval.fidelity.NaiveBayes``, trained on every real name)."""

from __future__ import annotations

import functools

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from app.data.corpus import DEFAULT_STATES_CSV, fold, normalize, read_corpus
from app.data.gazetteer import Gazetteer, load_gazetteer
from app.eval.fidelity import NaiveBayes
from app.generation.sampling import SamplingError
from app.web.credibility import credibility, cutoffs
from app.web.pages.home import modelos, permalink, templates
from app.web.pages.mapa import CREDIT, mapa_svg
from app.web.pages.sorpresa import cells
from app.web.pages.textos import MENSAJES, etiqueta, mensaje, mensaje_estado, porcentaje
from app.web.registry import Registry, UnknownModel
from app.web.schemas import ESTADO_MAX, MODEL_NAME_MAX, SCORE_NAME_MAX
from app.web.service import on_compute_thread, score_name

router = APIRouter(include_in_schema=False)
NEAREST = 5
SOUNDS_LIKE = 3


@functools.cache
def judge() -> NaiveBayes:
    """The state judge, fitted once on all real names with their states (~0.1 s)."""
    corpus = read_corpus(DEFAULT_STATES_CSV)
    return NaiveBayes.fit(corpus.names, corpus.states)


def sounds_like(name: str, top: int = SOUNDS_LIKE) -> list[tuple[str, float]]:
    """The ``top`` states the judge finds likeliest, with their posterior probability."""
    nb = judge()
    scores = nb.scores([name])[0]                      # (C,) log-posterior up to a constant
    posterior = np.exp(scores - scores.max())
    posterior /= posterior.sum()
    order = np.argsort(-posterior, kind="stable")[:top]
    return [(nb.labels[i], float(posterior[i])) for i in order]


def nearest_real(name: str, gazetteer: Gazetteer, k: int = NEAREST) -> list[dict]:
    """The ``k`` closest real names (edit distance, case and accents ignored), each with every
    state that has a municipality of that name."""
    found = process.extract(fold(name), gazetteer.keys, scorer=Levenshtein.distance, limit=k)
    out = []
    for key, distance, index in sorted(found, key=lambda hit: (hit[1], hit[2])):
        states = [estado for estado, (keys, _) in gazetteer.by_state.items() if key in keys]
        out.append({"name": gazetteer.names[index], "distance": int(distance),
                    "estados": states or ([gazetteer.states[index]] if gazetteer.states[index]
                                          else [])})
    return out


# the map's colours, in the legend's order: a state can be both, so that one has its own
MAP_LEGEND = {"marcado": "estado de un municipio parecido",
              "suena": "el estado al que más suena",
              "marcado suena": "el que más suena, con un municipio parecido"}


def where_map(near: list[dict], likely: list[tuple[str, float]],
              gazetteer: Gazetteer) -> tuple[Markup, list[tuple[str, str]]]:
    """Mexico with the nearest real names' states marked and the likeliest-sounding one shaded
    (a state that is both keeps both classes); and the legend of the colours it shows."""
    names = {e.code: e.name for e in gazetteer.estados}
    classes, notes = {}, {}
    top_state, top_p = likely[0] if likely else (None, 0.0)
    for item in near:
        for estado in item["estados"]:
            classes[estado] = "marcado"
            text = f"ahí está {item['name']}"
            notes[estado] = f"{notes[estado]}; {text}" if estado in notes else text
    if top_state:
        classes[top_state] = "marcado suena" if top_state in classes else "suena"
        note = f"suena a este estado ({porcentaje(top_p)})"
        notes[top_state] = f"{note}; {notes[top_state]}" if top_state in notes else note
    svg = Markup(mapa_svg(names, "Dónde están los municipios parecidos", "mapa-nombre",  # noqa: S704
                          classes=classes, notes=notes))
    shown = set(classes.values())
    return svg, [(css, text) for css, text in MAP_LEGEND.items() if css in shown]


def refusal(registry: Registry, model: str) -> tuple[int, str] | None:
    """Why no name can be scored for this request (status, Spanish message), or None."""
    if not registry.models:
        return 503, MENSAJES["sin_modelos"]
    if len(model) > MODEL_NAME_MAX:   # as the API's limit, so a long one is not echoed back
        return 422, mensaje("model", "model_too_long", disponibles=", ".join(registry.models))
    return None


def score_refusal(exc: SamplingError, registry: Registry, model: str) -> str:
    """The Spanish words for a name, or a state, that the model cannot score."""
    if exc.field == "estado":
        return (MENSAJES["estado_too_long"] if exc.code == "too_long"
                else mensaje_estado(registry, registry.get(model), exc, "nombre"))
    unknown = exc.context.get("unknown", [])
    if unknown:
        return "El modelo no conoce " + ", ".join(f"«{c}»" for c in unknown) + "."
    return MENSAJES["name_too_long" if exc.code == "too_long" else "name_empty"]


@router.get("/nombre/{texto:path}", response_class=HTMLResponse)
async def nombre(request: Request, texto: str, model: str = "", estado: str = "") -> HTMLResponse:
    """Any text reaches here (slashes too), so every mistake gets a Spanish answer."""
    registry: Registry = request.app.state.registry
    model = model or registry.default or ""
    texto = normalize(texto)
    # the heading shows what was asked for, but not an endless text back
    shown = texto if len(texto) <= SCORE_NAME_MAX else texto[:SCORE_NAME_MAX] + "…"
    gazetteer = load_gazetteer()
    context = {"texto": shown, "error": "", "credito_mapa": CREDIT}
    refused = refusal(registry, model)
    if refused:
        status, context["error"] = refused
        return templates.TemplateResponse(request, "nombre.html", context, status_code=status)
    status = 200
    try:
        if len(texto) > SCORE_NAME_MAX:
            raise SamplingError("name", "too_long", f"name is over {SCORE_NAME_MAX} characters")
        if len(estado) > ESTADO_MAX:   # as the API's limit, so a long one is not echoed back
            raise SamplingError("estado", "too_long", f"estado is over {ESTADO_MAX} characters")
        scored = await on_compute_thread(score_name, registry, model, texto, estado)
    except UnknownModel as exc:
        context["error"] = f"No hay un modelo «{model}»; los cargados son: {', '.join(exc.available)}."
        status = 404
    except SamplingError as exc:
        context["error"] = score_refusal(exc, registry, model)
        status = 422
    else:
        served = registry.get(model)
        near = nearest_real(texto, gazetteer)
        likely = sounds_like(texto)
        mapa, leyenda = where_map(near, likely, gazetteer)
        written = gazetteer.spelling(texto)   # the real name's spelling, None if not real
        asked = scored.estado if estado.strip() else None   # as the data names it; links keep it
        context.update({
            "score": scored, "celdas": cells(scored),
            "credibility": credibility(cutoffs(served), scored.nll_per_char),
            "etiqueta": etiqueta(served, registry.default),
            "escrito": written, "enlace_escrito": permalink(written or texto, model, asked),
            "cercanos": near, "suena": [(state, porcentaje(p)) for state, p in likely],
            "mapa": mapa, "leyenda_mapa": leyenda,
            "estado_pedido": asked is not None,
            "otros": [(m["etiqueta"], permalink(texto, m["name"], asked
                                                if registry.models[m["name"]].conditioned else None))
                      for m in modelos(registry) if m["name"] != model],
        })
    return templates.TemplateResponse(request, "nombre.html", context, status_code=status)
