"""The page's Spanish words: error messages by field and code, model names for people, and the
sentence that says what was found when sampling stopped short (budget, deadline or shutdown)."""

from __future__ import annotations

from app.eval.fidelity import ORDERS
from app.generation.sampling import MAX_LENGTH_DEFAULT, MAX_LENGTH_LIMIT, TEMPERATURE_MAX, SamplingError
from app.web.registry import Registry, ServedModel
from app.web.schemas import ESTADO_MAX, MODEL_NAME_MAX, N_MAX, SCORE_NAME_MAX, SEED_MAX, TOP_K_MAX

# /comparar's state judge (app.eval.fidelity), described as the report's English one is
JUEZ = (f"un clasificador de Bayes ingenuo que cuenta los grupos de {min(ORDERS)} a "
        f"{max(ORDERS)} letras de los municipios de cada estado, sin preferir ninguno")

# keyed by error code first, then by field; {placeholders} are filled from the error's context
MENSAJES = {
    "model": "Modelo: elige uno de los modelos cargados ({disponibles}).",
    "model_too_long": f"Modelo: el nombre de un modelo tiene como máximo {MODEL_NAME_MAX} "
                      "caracteres; elige uno de los cargados ({disponibles}).",
    "n": f"Cuántos: escribe un número entero del 1 al {N_MAX}.",
    "temperature": f"Temperatura: un número mayor que 0 y como máximo {TEMPERATURE_MAX:g}.",
    "prefix": f"Empieza con: como máximo {MAX_LENGTH_LIMIT} caracteres.",
    "prefix_too_long": "Empieza con: no puede tener más letras que el largo máximo "
                       "({max_length}).",
    "prefix_unknown_chars": "Empieza con: el modelo no conoce estos caracteres: {chars}.",
    "prefix_spacing": "Empieza con: ningún nombre empieza con un espacio ni tiene dos seguidos.",
    "prefix_lowercase": "Empieza con: todo municipio empieza con mayúscula; escribe «{suggestion}».",
    "prefix_start": "Empieza con: todo municipio empieza con una letra mayúscula.",
    "prefix_digit": "Empieza con: un nombre inventado nunca lleva números.",
    "suffix_digit": "Termina en: un nombre inventado nunca lleva números.",
    "contains_digit": "Contiene: un nombre inventado nunca lleva números.",
    "suffix": f"Termina en: como máximo {MAX_LENGTH_LIMIT} caracteres.",
    "suffix_too_long": "Termina en: no puede tener más letras que el largo máximo "
                       "({max_length}).",
    "suffix_hyphen_only": "Termina en: escribe la terminación después del guion, como «-tepec».",
    "suffix_unknown_chars": "Termina en: el modelo no conoce estos caracteres: {chars}.",
    "contains": f"Contiene: como máximo {MAX_LENGTH_LIMIT} caracteres.",
    "contains_too_long": "Contiene: no puede tener más letras que el largo máximo "
                         "({max_length}).",
    "contains_unknown_chars": "Contiene: el modelo no conoce estos caracteres: {chars}.",
    "min_length": f"Largo mínimo: un número entero del 1 al {MAX_LENGTH_LIMIT}.",
    "min_over_max": "Largo mínimo: no puede pasar del largo máximo ({max_length}).",
    "seed": f"Semilla: escribe un número entero del 0 al {SEED_MAX}, o déjala vacía.",
    "top_k": f"Top-k: escribe un número entero del 1 al {TOP_K_MAX}, o déjalo vacío.",
    "max_length": f"Largo máximo: escribe un número entero del 1 al {MAX_LENGTH_LIMIT}.",
    "novel": "Solo nombres nuevos: marca o desmarca la casilla.",
    "estado": "Estado: elige uno de la lista o «todos los estados».",
    "unknown_state": "Estado: «{value}» no es un estado de la lista; elige uno o «todos los estados».",
    "not_conditioned": "Estado: el modelo {model} no distingue estados; elige «todos los estados» o "
                       "un modelo entrenado por estado ({conditioned}).",
    # a name's own page (/nombre/...) has no list to choose from: its state is in the address
    "unknown_state_nombre": "Estado: «{value}» no es un estado que conozca este modelo; quita el "
                            "estado de la dirección o escribe uno de los suyos: {validos}.",
    "not_conditioned_nombre": "Estado: el modelo {model} no distingue estados; quita el estado de "
                              "la dirección o usa un modelo entrenado por estado ({conditioned}).",
    "estado_too_long": f"Estado: como máximo {ESTADO_MAX} caracteres.",
    "name_too_long": f"El nombre puede tener como máximo {SCORE_NAME_MAX} caracteres.",
    "name_empty": "Escribe un nombre.",
    "sin_modelos": "No hay ningún modelo cargado, así que no se pueden inventar nombres ahora.",
    "desconocido": "Algo salió mal con esos datos; revisa el formulario.",
}

# plain names by (kind, trained by state); the service's default model is "recomendado"
ETIQUETAS = {
    ("lstm", False): "LSTM", ("rnn", False): "RNN simple", ("markov", False): "Cadena de Márkov",
    ("mezcla", False): "Mezcla", ("lstm", True): "LSTM por estado",
    ("rnn", True): "RNN simple por estado",
}


def mensaje(field: str, code: str = "", **context) -> str:
    """The Spanish text for an error. Raises KeyError when its template needs a value that
    ``context`` lacks: a bug to fix, never a {placeholder} to show."""
    if "valid" in context:
        context["validos"] = ", ".join(context["valid"])
    if "unknown" in context:
        context["chars"] = ", ".join(f"«{ch}»" if ch.isprintable() and not ch.isspace()
                                     else f"U+{ord(ch):04X}"   # invisible between «»
                                     for ch in context["unknown"])
    template = MENSAJES.get(code) or MENSAJES.get(field) or MENSAJES["desconocido"]
    return template.format(**context)


def porcentaje(p: float) -> str:
    """A probability as a whole percentage that never claims certainty: «menos de 1 %» rather
    than «0 %», «más de 99 %» rather than «100 %»."""
    value = round(100 * p)
    if value < 1:
        return "menos de 1 %"
    return "más de 99 %" if value > 99 else f"{value} %"


def etiqueta(served: ServedModel, default: str | None) -> str:
    """"LSTM (recomendado)", "Cadena de Márkov", ...; the file name for unknown kinds."""
    kind = getattr(served.model, "family", served.model.kind)   # an ensemble of LSTMs is an lstm
    label = ETIQUETAS.get((kind, served.conditioned), served.name)
    return f"{label} (recomendado)" if served.name == default else label


def mensaje_estado(registry: Registry, served: ServedModel, exc: SamplingError,
                   page: str = "") -> str:
    """The Spanish words for a refused ``estado``, the models named as the page names them;
    ``page`` picks a page's own wording where it has one ("nombre")."""
    names = {"model": etiqueta(served, registry.default),
             "conditioned": " o ".join(etiqueta(registry.models[n], registry.default)
                                       for n in registry.conditioned) or "—"}
    code = f"{exc.code}_{page}" if f"{exc.code}_{page}" in MENSAJES else exc.code
    return mensaje(exc.field, code, **{**exc.context, **names})


def con_filtros(values: dict[str, str]) -> str:
    """What the names had to meet, as words: "que terminen en «-tepec» y de 8 caracteres o más"."""
    parts = []
    if values.get("prefix"):
        parts.append(f"que empiecen con «{values['prefix']}»")
    if values.get("suffix", "").strip():
        suffix = values["suffix"].strip()
        one_word = suffix[0] not in "- " and " " not in suffix
        parts.append(f"que terminen en «{'-' + suffix if one_word else suffix}»")
    if values.get("contains", "").strip():
        parts.append(f"que contengan «{values['contains'].strip()}»")
    shortest = values.get("min_length") or "1"
    longest = values.get("max_length") or str(MAX_LENGTH_DEFAULT)
    floor, cap = shortest != "1", longest != str(MAX_LENGTH_DEFAULT)   # set away from defaults
    if shortest == longest:
        parts.append(f"de exactamente {shortest} {'carácter' if shortest == '1' else 'caracteres'}")
    elif floor and cap:
        parts.append(f"de {shortest} a {longest} caracteres")
    elif floor:
        parts.append(f"de {shortest} caracteres o más")
    elif cap:
        parts.append(f"de {longest} caracteres o menos")
    text = " y ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
    top_k = values.get("top_k")
    if top_k:
        how = ("siempre la letra más probable" if top_k == "1"
               else f"solo entre las {top_k} letras más probables")
        text = f"{text}, eligiendo {how}" if text else f"eligiendo {how}"
    return text


# what to do about it, by why sampling stopped (``SampleResult.stopped``)
CONSEJOS = {
    "budget": "prueba otra temperatura o condiciones menos estrictas",
    "deadline": "prueba otra temperatura o condiciones menos estrictas",
    "shutdown": "el servidor se está reiniciando; vuelve a pedirlos en unos segundos",
}
# with top-k = 1 every draw is the likeliest letter, whatever the temperature
CONSEJO_TOP_1 = "prueba un top-k mayor o condiciones menos estrictas"


def faltantes(found: int, requested: int, values: dict[str, str], stopped: str) -> str:
    """The honest sentence when sampling stopped (``stopped``: its draw budget or time ran
    out, or the server is shutting down) before ``requested`` names."""
    condition = con_filtros(values)
    condition = f" {condition}" if condition else ""
    advice = CONSEJO_TOP_1 if values.get("top_k") == "1" and stopped != "shutdown" else CONSEJOS[stopped]
    if found == 0:
        return f"no se encontró ninguno de {requested}{condition}; {advice}"
    verb = "se encontró" if found == 1 else "se encontraron"
    return f"solo {verb} {found} de {requested}{condition}; {advice}"
