"""The page's form: its values from a request, every error at once by field, and the URL that
repeats a batch (every setting plus the seed used)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from pydantic import ValidationError

from app.data.gazetteer import load_gazetteer
from app.generation.sampling import SamplingError, option_errors
from app.web.pages.textos import mensaje, mensaje_estado
from app.web.registry import Registry, UnknownModel
from app.web.schemas import NamesQuery
from app.web.service import find_estado

# the settings a link carries, in the order they are written
CAMPOS = ("model", "n", "temperature", "prefix", "suffix", "contains", "min_length",
          "max_length", "novel", "estado", "top_k", "seed")


def form_defaults(registry: Registry) -> dict[str, str]:
    """What the form shows for a field a request leaves out (as strings, "" for none)."""
    defaults = NamesQuery().model_dump()
    values = {key: "" if value is None else str(value) for key, value in defaults.items()}
    values["model"] = registry.default or ""
    values["novel"] = "true"
    return values


def form_values(registry: Registry, request: Request) -> dict[str, str]:
    """What the form shows: the request's values over the defaults (as strings)."""
    values = form_defaults(registry)
    values.update(request.query_params)
    # the form sends a hidden novel=false and, when the box is ticked, novel=true after it
    novel = request.query_params.getlist("novel")
    if novel:
        values["novel"] = "true" if any(v in ("true", "on", "1") for v in novel) else novel[-1]
    return values


def revisar(registry: Registry, values: dict[str, str]
            ) -> tuple[NamesQuery | None, dict[str, list[str]]]:
    """The query, or None and every problem, by field, in Spanish: the ranges of the schema,
    then what depends on the model (its letters, its states), checked with the valid fields."""
    errors: dict[str, list[str]] = {}

    def add(field: str, text: str) -> None:
        if text not in errors.setdefault(field, []):
            errors[field].append(text)

    try:
        query = NamesQuery.model_validate(values)
    except ValidationError as exc:
        for field in (str(e["loc"][-1]) if e["loc"] else "" for e in exc.errors()):
            # the schema limits a model's name by its length only
            add(field, mensaje(field, "model_too_long", disponibles=", ".join(registry.models))
                if field == "model" else mensaje(field))
        # each field is checked alone, so the others are still worth checking
        query = NamesQuery.model_validate({k: v for k, v in values.items() if k not in errors})
    try:
        served = registry.get(query.model)
    except UnknownModel as exc:
        add("model", mensaje("model", disponibles=", ".join(exc.available)))
        return None, errors
    if query.estado and query.estado.strip():
        try:
            find_estado(registry, served, query.estado, load_gazetteer())
        except SamplingError as exc:
            add("estado", mensaje_estado(registry, served, exc))
    for exc in option_errors(served.model.vocab, query.temperature, query.top_k,
                             query.prefix, query.max_length,   # NFC already (NfcText)
                             filters=query.filters):
        add(exc.field, mensaje(exc.field, exc.code, **exc.context))
    return (None if errors else query), errors


def consulta(values: dict[str, str], **changes: str) -> str:
    """The query string of a batch: every setting that has a value, ``changes`` applied."""
    merged = {**values, **changes}
    return urlencode([(key, merged[key]) for key in CAMPOS if merged.get(key, "") != ""])


def query_values(query: NamesQuery, seed: int) -> dict[str, str]:
    """A validated query and its seed as the form's string values."""
    dumped = query.model_dump()
    dumped["seed"] = seed
    return {key: ("true" if v is True else "false" if v is False else "" if v is None else str(v))
            for key, v in dumped.items()}
