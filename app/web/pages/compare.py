"""The /comparar page (Spanish) and GET /api/report: how the models compare, measured.

The report (``models/report.json``, written by ``python -m app.evaluate --report``) gives the
numbers and samples; each served checkpoint gives its training history. Charts are inline SVG
drawn here. "Prueba un nombre" scores a name with every model through ``app.web.service``.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup

from app.data.corpus import normalize
from app.data.gazetteer import load_gazetteer
from app.generation.sampling import SamplingError
from app.lm.base import model_order
from app.web.pages.charts import Series, line_chart
from app.web.pages.error import error_page
from app.web.pages.home import modelos, permalink, templates
from app.web.pages.mapa import CREDIT, mapa_svg
from app.web.pages.sorpresa import cells
from app.web.pages.textos import JUEZ, MENSAJES
from app.web.published import CROSS_VALIDATION, cv_rows, load_report, with_cross_validation
from app.web.registry import Registry
from app.web.schemas import SCORE_NAME_MAX
from app.web.service import on_compute_thread, score_name

router = APIRouter()

# Okabe-Ito hues, told apart with the common colour-vision deficiencies; each has >= 3:1
# contrast on the white chart (its orange, sky blue and yellow do not, so they are left out); a
# state-conditioned variant is a darker shade of its family's hue
COLORS = {"rnn": "#D55E00", "lstm": "#0072B2", "markov": "#009E73", "mezcla": "#CC79A7",
          "rnn_estado": "#8A3D00", "lstm_estado": "#00446B"}
SPARE_COLORS = ("#000000", "#5F584F")
Y_SPAN = 1.0   # nats shown on the training chart above the lowest curve: the first epochs of a
               # weight-averaged model start near 4 and would flatten every difference that matters
# the judge's hit rate per state, in the map's five shades (lower bounds)
FIDELITY_BOUNDS = (0.1, 0.25, 0.5, 0.75)


@router.get("/api/report", tags=["api"], responses={
    200: {"description": "The report written by `python -m app.evaluate --report`, each "
                         "model's `val_nll` its published cross-validation's where there is one "
                         "(`val_nll_source`)."},
    404: {"description": "No report has been generated for the served models folder."}})
def api_report(request: Request) -> JSONResponse:
    """Every model compared: size, NLL on unseen names, training cost, and sample statistics at
    temperatures 0.5, 0.8, 1.0 and 1.2 (novelty, copies, distinct, length, examples)."""
    registry: Registry = request.app.state.registry
    data = load_report(registry.folder)
    if data is None:
        return JSONResponse(status_code=404, content={
            "detail": "no report yet: run python -m app.evaluate --report"})
    return JSONResponse(with_cross_validation(data, cv_rows(registry.folder)))


def pct(share: float) -> str:
    """A share as Spanish writes a percentage: 0.91 -> "91 %"."""
    return f"{100 * share:.0f} %"


def called(model: dict, labels: dict[str, str] | None) -> str:
    """A report's model as the page names it ("LSTM (recomendado)"), else by its file name."""
    return (labels or {}).get(model["name"], model["name"])


def color_for(name: str, names: list[str]) -> str:
    if name in COLORS:
        return COLORS[name]
    spare = [n for n in names if n not in COLORS]
    return SPARE_COLORS[spare.index(name) % len(SPARE_COLORS)] if name in spare else "#666666"


def training_chart(registry: Registry) -> str | None:
    """Validation (solid) and training (dashed, thin legend) NLL per epoch of each neural model;
    the models fitted without epochs (n-gram, mixture) appear as a flat solid line at their
    validation NLL, labelled so. The y-axis is fitted to the data that matter (see Y_SPAN)."""
    names = sorted(registry.models, key=model_order)
    labels = etiquetas(registry)
    curves, flat = [], []
    for name in names:
        served, label = registry.models[name], labels[name]
        history = [h for h in served.model.metadata.get("history", []) if "epoch" in h]
        color = color_for(name, names)
        if history:
            # a student's epochs measure its distance to its teacher, not NLL on real names
            # (said instead of «validación», which would not fit the legend's line)
            shown = (f"{label} contra su maestra" if "distillation" in served.model.metadata
                     else f"{label} validación")
            curves.append(Series(shown,
                                 [(h["epoch"], h["val_nll"]) for h in history], color,
                                 markers=len(history) <= 15))
            curves.append(Series(f"{label} entrenamiento",
                                 [(h["epoch"], h["train_nll"]) for h in history], color,
                                 dashed=True, markers=False, in_legend=False))
        elif served.model.metadata.get("metrics", {}).get("val_nll") is not None:
            flat.append((label, served.model.metadata["metrics"]["val_nll"], color))
    if not curves:
        return None
    epochs = [x for s in curves for x, _ in s.points]
    for label, val_nll, color in flat:
        curves.append(Series(f"{label} validación (sin épocas)",
                             [(min(epochs), val_nll), (max(epochs), val_nll)], color,
                             markers=False))
    curves.append(Series("discontinua: entrenamiento", [], "#5F584F", dashed=True))
    low = min(y for s in curves for _, y in s.points)
    high = max(y for s in curves for _, y in s.points)
    y_range = (math.floor(low * 10) / 10, min(high, math.floor(low * 10) / 10 + Y_SPAN))
    return line_chart(curves, "NLL por carácter durante el entrenamiento", "época",
                      "NLL (nats por carácter)", x_format="{:g}".format,
                      y_format="{:.1f}".format, chart_id="curvas", integer_x=True,
                      y_range=y_range, height=440)


def temperature_chart(report: dict, key: str, title: str, y_label: str, chart_id: str,
                      percent: bool = False, reference: tuple[str, float] | None = None,
                      labels: dict[str, str] | None = None) -> str:
    """One line per model of a sampling metric against temperature."""
    names = [m["name"] for m in report["models"]]
    scale = 100.0 if percent else 1.0
    series = [Series(called(m, labels), [(s["temperature"], s[key] * scale) for s in m["sampling"]
                                 if s[key] is not None], color_for(m["name"], names))
              for m in report["models"]]
    if reference is not None:
        temps = report["temperatures"]
        series.append(Series(reference[0], [(min(temps), reference[1]), (max(temps), reference[1])],
                             "#555555", dashed=True, markers=False))
    y_format = "{:.0f} %".format if percent else "{:.1f}".format
    return line_chart(series, title, "temperatura", y_label, x_format="{:g}".format,
                      y_format=y_format, chart_id=chart_id)


def order_chart(registry: Registry) -> str | None:
    """Train and validation NLL of the n-gram against its order (its "history")."""
    for name, served in registry.models.items():
        history = [h for h in served.model.metadata.get("history", []) if "order" in h]
        if served.model.kind == "markov" and history:
            color = color_for(name, list(registry.models))
            return line_chart(
                [Series("validación", [(h["order"], h["val_nll"]) for h in history], color),
                 Series("entrenamiento", [(h["order"], h["train_nll"]) for h in history], color,
                        dashed=True)],
                "NLL según el orden del n-grama",
                "orden n (contexto de n-1 letras)",
                "NLL (nats por carácter)", y_format="{:.2f}".format, chart_id="orden",
                integer_x=True)
    return None


def _at(model: dict, temperature: float) -> dict | None:
    return next((s for s in model["sampling"] if s["temperature"] == temperature), None)


def comentario(report: dict, labels: dict[str, str] | None = None) -> list[str]:
    """A short Spanish reading of the report, every claim carrying its number; ``labels``
    names the models as the page does."""
    by_name = {m["name"]: m for m in report["models"]}
    rnn, lstm, markov, mezcla = (by_name.get(k) for k in ("rnn", "lstm", "markov", "mezcla"))
    real = report["real"]
    out = []
    if rnn and lstm and rnn["val_nll"] and lstm["val_nll"]:
        gain = rnn["val_nll"] - lstm["val_nll"]
        r1, l1 = _at(rnn, 1.0), _at(lstm, 1.0)
        text = (f"La LSTM predice la siguiente letra de un nombre que nunca vio con "
                f"{lstm['val_nll']:.3f} nats por carácter, contra {rnn['val_nll']:.3f} de la RNN "
                f"simple ({'mejor' if gain > 0 else 'peor'} por {abs(gain):.3f}): en promedio "
                f"duda entre {math.exp(lstm['val_nll']):.1f} letras en vez de "
                f"{math.exp(rnn['val_nll']):.1f}. Sus compuertas conservan lo que se decidió "
                f"al principio del nombre («San …», «Santa María …») y saben cuándo cerrarlo")
        if r1 and l1 and r1["mean_length"] and l1["mean_length"]:
            text += (f": a temperatura 1 sus nombres miden {l1['mean_length']:.1f} caracteres "
                     f"y los de la RNN {r1['mean_length']:.1f}, con {real['mean_length']:.1f} en "
                     f"la lista real")
        out.append(text + ".")
    if markov and markov["val_nll"]:
        text = (f"El n-grama con suavizado Kneser-Ney, que solo cuenta qué letra sigue a las "
                f"últimas pocas, llega a {markov['val_nll']:.3f} nats por carácter")
        if lstm and lstm["val_nll"]:
            text += (f" ({'mejor' if markov['val_nll'] < lstm['val_nll'] else 'peor'} que la "
                     f"LSTM por {abs(markov['val_nll'] - lstm['val_nll']):.3f})")
        text += (". Con unos 2,000 nombres hechos de piezas que se repiten (San, Santa, de, "
                 "-tlán, -tepec, -huacán) contar es casi todo lo que hay que aprender, y una red "
                 "con cientos de miles de parámetros tiene pocos ejemplos para ganar más. Su "
                 "debilidad es la memoria literal")
        cold_m, cold_l = _at(markov, 0.5), lstm and _at(lstm, 0.5)
        if cold_m:
            text += f": a temperatura 0.5 el {pct(cold_m['copy_rate'])} de sus muestras copia un " \
                    f"nombre de entrenamiento"
            if cold_l:
                text += f", contra {pct(cold_l['copy_rate'])} de la LSTM"
        out.append(text + ".")
    if mezcla and mezcla["val_nll"] and lstm and markov:
        weight = (mezcla.get("weights") or [None])[0]
        share = f", con peso {weight:.2f} para la LSTM" if weight is not None else ""
        if mezcla.get("gated"):
            share = (", con un peso para la LSTM que cambia letra a letra según cuán segura "
                     "está cada una y cuánto coinciden")
        if mezcla.get("gated") and mezcla.get("product"):
            share += (", y una parte de su producto, que pone la probabilidad donde las dos "
                      "coinciden")
        # a student: the mezcla is made of the ensemble the served lstm learned from
        student = lstm.get("distilled_from") == "mezcla"
        against_ngram = student or lstm["val_nll"] is None
        best = markov["val_nll"] if against_ngram else min(lstm["val_nll"], markov["val_nll"])
        networks = "de un conjunto de LSTM" if student else "de la LSTM"
        out.append(f"Promediar letra a letra las probabilidades {networks} y del n-grama (la "
                   f"mezcla{share}) baja la NLL de validación a {mezcla['val_nll']:.3f}, "
                   f"{best - mezcla['val_nll']:.3f} menos que "
                   f"{'el n-grama' if against_ngram else 'el mejor de los dos'}: se equivocan "
                   f"en lugares distintos, y donde uno duda el otro suele acertar.")
        if student and lstm["val_nll"]:
            which = ("esa mezcla sin su parte del producto, la que más copia" if mezcla.get("product")
                     else "esa mezcla")
            if lstm.get("out_of_fold"):
                which += ("; en cada nombre real imita lo que la mezcla diría sin haberlo visto, "
                          "para no aprender a copiarlo")
            out.append(f"La LSTM servida es una sola red entrenada para imitar letra por letra "
                       f"(destilación) {which}. Su NLL queda "
                       f"{lstm['val_nll'] - mezcla['val_nll']:.3f} por encima de la de la mezcla "
                       f"servida y {markov['val_nll'] - lstm['val_nll']:.3f} por debajo de la del "
                       f"n-grama, con el costo de muestreo de una sola red.")
    costs = [m for m in (rnn, lstm, markov) if m and m["train_seconds"] is not None]
    if len(costs) >= 2:
        parts = [f"{called(m, labels)}, {m['n_params']:,} parámetros"
                 f"{' (conteos)' if m['kind'] == 'markov' else ''} y {m['train_seconds']:.1f} s"
                 for m in costs]
        out.append("Costo de entrenamiento en esta máquina de 2 núcleos: " + "; ".join(parts) +
                   ". El n-grama se ajusta en segundos; las redes deben ganarse su costo.")
    temps = [m for m in report["models"] if _at(m, 0.5) and _at(m, 1.2)
             and _at(m, 0.5)["mean_length"] and _at(m, 1.2)["mean_length"]]
    if temps:
        m = next((x for x in temps if x["name"] == "lstm"), temps[0])
        cold, hot = _at(m, 0.5), _at(m, 1.2)
        out.append(f"La temperatura cambia credibilidad por novedad. Con {called(m, labels)} a 0.5 el "
                   f"{pct(cold['novelty_rate'])} de las muestras es nuevo y el "
                   f"{pct(cold['distinct_rate'])} distinto: gana lo más típico, y los nombres se "
                   f"alargan ({cold['mean_length']:.1f} caracteres, "
                   f"{pct(cold['over_three_words'])} con más de tres palabras, contra "
                   f"{pct(real['over_three_words'])} en la lista real) porque «San … de …» es "
                   f"el camino más probable. A 1.2 sube a {pct(hot['novelty_rate'])} nuevos y "
                   f"{pct(hot['distinct_rate'])} distintos, con {hot['mean_length']:.1f} "
                   f"caracteres, pero las letras improbables ganan peso y aparecen "
                   f"combinaciones que ningún nombre real tiene (ver los ejemplos).")
    return out


def etiquetas(registry: Registry) -> dict[str, str]:
    """Each served model's name as the page says it ("LSTM (recomendado)"), by file name."""
    return {m["name"]: m["etiqueta"] for m in modelos(registry)}


def score_everywhere(registry: Registry, nombre: str) -> tuple[list[dict], list[str]]:
    """The name scored by every served model (cells, NLL per char, percentile), and the
    Spanish errors of the models that cannot score it, each error said once."""
    results, errors = [], {}
    labels = etiquetas(registry)   # in the form's order
    for name, label in labels.items():
        try:
            scored = score_name(registry, name, nombre)
        except SamplingError as exc:
            unknown = exc.context.get("unknown", [])
            error = ("no conoce " + ", ".join(f"«{c}»" for c in unknown)
                     if unknown else "hace falta un nombre")
            errors.setdefault(error, []).append(name)
            continue
        results.append({"model": name, "etiqueta": label,
                        "estado": scored.estado, "nll_per_char": scored.nll_per_char,
                        "percentile": scored.percentile, "n_reference": scored.n_reference,
                        "cells": cells(scored), "enlace": permalink(nombre, name)})
    if len(errors) == 1 and not results:
        return [], [f"Ningún modelo puede calificarlo: {next(iter(errors))}."]
    return results, [f"No se puede calificar con {', '.join(models)}: {error}."
                     for error, models in errors.items()]


def fidelity_map(report: dict | None, labels: dict[str, str] | None = None) -> dict | None:
    """The judge's hit rate per state for the first conditioned model, as a shaded map."""
    models = ((report or {}).get("fidelity") or {}).get("models") or []
    per_state = models[0].get("per_label") if models else None
    if not per_state:
        return None
    shade = {estado: f"nivel-{sum(rate >= b for b in FIDELITY_BOUNDS)}"
             for estado, rate in per_state.items()}
    names = {e.code: e.name for e in load_gazetteer().estados if e.name in per_state}
    svg = mapa_svg(names, f"Acierto del juez por estado, nombres de {called(models[0], labels)}",
                   "mapa-fidelidad", classes=shade,
                   notes={e: f"{100 * r:.0f} % reconocidos" for e, r in per_state.items()})
    return {"model": models[0]["name"], "svg": Markup(svg),  # noqa: S704 - built with escape()
            "rows": sorted(per_state.items(), key=lambda item: -item[1]),
            "bounds": [f"{100 * b:.0f} %" for b in FIDELITY_BOUNDS]}


def resumen(report: dict, labels: dict[str, str] | None = None) -> list[str]:
    """Three short lines for people in a hurry, each with its number."""
    models = [m for m in report["models"] if m.get("val_nll") is not None]
    out = []
    if models:
        best = min(models, key=lambda m: m["val_nll"])
        out.append(f"El que mejor predice nombres que nunca vio: {called(best, labels)} "
                   f"({best['val_nll']:.3f} nats por carácter; menos es mejor).")
    lstm = next((m for m in report["models"] if m["name"] == "lstm"), None)
    warm = lstm and _at(lstm, 0.8)
    if warm:
        out.append(f"A temperatura 0.8, el {pct(warm['novelty_rate'])} de los nombres de la LSTM "
                   f"son nuevos (no existen).")
    timed = [m for m in models if m.get("train_seconds") is not None]
    if len(timed) >= 2:
        fast, slow = min(timed, key=lambda m: m["train_seconds"]), max(timed, key=lambda m: m["train_seconds"])
        out.append(f"Entrenar cuesta de {fast['train_seconds']:.1f} s ({called(fast, labels)}) a "
                   f"{slow['train_seconds']:.1f} s ({called(slow, labels)}) en 2 núcleos.")
    return out


def fidelity_rows(report: dict | None) -> list[tuple[str, dict]]:
    """(label, scores) of the state judge: held-out real names first, then each model."""
    fidelity = (report or {}).get("fidelity")
    if not fidelity:
        return []
    return [("reales no vistos", fidelity["real_held_out"])] + [
        (m["name"], m) for m in fidelity["models"]]


def other_validation(models: list[dict]) -> set[str]:
    """The models whose NLL was measured on other names than the lstm's (the table stars them):
    figures from the published cross-validation share its folds, a checkpoint's own figure is
    on its split."""
    def validation(m: dict) -> str | None:
        return CROSS_VALIDATION if m.get("val_nll_source") == CROSS_VALIDATION else m.get("split")

    reference = next((m for m in models if m["name"] == "lstm"), models[0] if models else None)
    return {m["name"] for m in models if validation(m) != validation(reference)}


@router.get("/comparar", response_class=HTMLResponse, include_in_schema=False)
async def comparar(request: Request, nombre: str = "") -> HTMLResponse:
    registry: Registry = request.app.state.registry
    if not registry.models:
        return error_page(request, 503, "Comparar modelos", MENSAJES["sin_modelos"])
    cv = cv_rows(registry.folder)
    labels = etiquetas(registry)
    report = load_report(registry.folder)
    if report:   # every figure on the page, the table's included, is the published CV's
        report = with_cross_validation(report, cv)
    blank = bool(nombre) and not nombre.strip()   # asked to score only spaces
    nombre = normalize(nombre)   # NFC: its limit counts characters as written
    charts = {}
    if report and report["models"]:
        real = report["real"]
        charts["novedad"] = temperature_chart(report, "novelty_rate", "Nombres nuevos según la "
                                              "temperatura", "% de nuevos",
                                              "novedad", percent=True, labels=labels)
        charts["longitud"] = temperature_chart(report, "mean_length", "Longitud media según la "
                                               "temperatura", "caracteres", "longitud",
                                               reference=("nombres reales",
                                                          real["mean_length"]), labels=labels)
    for key, svg in (("curvas", training_chart(registry)), ("orden", order_chart(registry))):
        if svg:
            charts[key] = svg
    too_long = len(nombre) > SCORE_NAME_MAX
    scores, score_errors = (await on_compute_thread(score_everywhere, registry, nombre)
                            if nombre and not too_long else ([], []))
    # too long, only spaces, or no model knows it
    rejected = too_long or blank or bool(score_errors and not scores)
    models = report["models"] if report else []
    other_split = other_validation(models)
    context = {
        "report": report,
        "cv": [row for row in cv if row.get("served")],
        "cv_historial": [row for row in cv if not row.get("served")],
        "charts": {k: Markup(v) for k, v in charts.items()},  # noqa: S704 - built with escape()
        "comentario": comentario(report, labels) if report else [],
        "resumen": resumen(report, labels) if report else [],
        "nombre": nombre,
        "nombre_max": SCORE_NAME_MAX,
        "scores": scores,
        "score_errors": score_errors,
        "too_long": too_long,
        "en_blanco": blank,
        "mensajes": MENSAJES,
        "juez": JUEZ,
        "etiquetas": labels,
        "rechazado": rejected,
        "other_split": other_split,
        "fidelidad": fidelity_rows(report),
        "mapa_fidelidad": fidelity_map(report, labels),
        "credito_mapa": CREDIT,
        "models": list(registry.models),
    }
    return templates.TemplateResponse(request, "comparar.html", context,
                                      status_code=422 if rejected else 200)
