"""Request parameters and response bodies of the JSON API (they also drive the OpenAPI docs).

The ranges declared here are the single source of truth: the API validates with them, the page
validates its form with the same model, and error messages quote ``ALLOWED``.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, GetJsonSchemaHandler, model_validator
from pydantic_core import CoreSchema

from app.data.corpus import MAX_NAME_LENGTH
from app.generation.sampling import (
    MAX_LENGTH_DEFAULT,
    MAX_LENGTH_LIMIT,
    TEMPERATURE_MAX,
    TOP_K_MAX,
    Filters,
)

N_MAX = 100
SEED_MAX = 2**32 - 1
SCORE_NAME_MAX = MAX_NAME_LENGTH   # any name a list may hold: the longest real one has 76
ESTADO_MAX = 40

# what each parameter accepts, in words, quoted by every 422
ALLOWED = {
    "model": "the name of a loaded model (see /api/models)",
    "n": f"an integer from 1 to {N_MAX}",
    "temperature": f"a number greater than 0 and at most {TEMPERATURE_MAX:g}",
    "prefix": f"at most max_length ({MAX_LENGTH_DEFAULT} by default) characters the model knows",
    "seed": f"an integer from 0 to {SEED_MAX}, or empty for a random seed",
    "top_k": f"an integer from 1 to {TOP_K_MAX}, or empty for all characters",
    "max_length": f"an integer from 1 to {MAX_LENGTH_LIMIT}",
    "min_length": "an integer from 1 to max_length",
    "suffix": f"at most max_length ({MAX_LENGTH_DEFAULT} by default) characters the model knows "
              "(case and accents ignored)",
    "contains": f"at most max_length ({MAX_LENGTH_DEFAULT} by default) characters the model "
                "knows (case and accents ignored)",
    "novel": "true or false",
    "name": f"1 to {SCORE_NAME_MAX} characters the model knows",
    "estado": f"a state's name or two-digit INEGI code (see /api/estados), case and accents "
              f"ignored, at most {ESTADO_MAX} characters, or empty for none; only for models "
              "conditioned on the state",
}
MODEL_NAME_MAX = 100
MODEL_DESCRIPTION = ("Model to use: the name of a loaded model (file stem in models/, e.g. lstm or "
                     "rnn). Omitted or empty: the server's default, `default` in /api/models "
                     "(lstm when it is loaded, else the first loaded model).")


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


# text whose length limit counts characters as written: "é" typed as e + a combining accent
# (two code points) is one character, as it is once the sampler or scorer normalises it. A
# query parameter takes NFC after its Query(...) (before it, pydantic counts "items")
NFC = BeforeValidator(_nfc)
NfcText = Annotated[str, NFC]


class EmptyMeansDefault:
    """Marks a query parameter that may also be sent empty (``seed=``, as an HTML form sends a
    blank field) to mean "not given": its schema says so, for clients and for fuzzers."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict:
        schema = dict(handler(core_schema))
        outer = {key: schema.pop(key) for key in ("description", "title") if key in schema}
        options = schema["anyOf"] if set(schema) == {"anyOf"} else [schema]
        return {"anyOf": [*options, {"type": "string", "maxLength": 0}], **outer}


class NamesQuery(BaseModel):
    """Options of one sampling request (``GET /api/names`` and the page's form)."""

    model: str | None = Field(None, max_length=MODEL_NAME_MAX, description=MODEL_DESCRIPTION)
    n: Annotated[int, EmptyMeansDefault()] = Field(
        10, ge=1, le=N_MAX, description=f"How many names, {ALLOWED['n']}.")
    temperature: Annotated[float, EmptyMeansDefault()] = Field(
        0.8, gt=0, le=TEMPERATURE_MAX, allow_inf_nan=False,
        description="Divides the logits before sampling: near 0 gives the most likely name, "
                    f"1 samples the model as trained, higher is wilder. {ALLOWED['temperature']}.")
    prefix: NfcText = Field("", max_length=MAX_LENGTH_LIMIT,
                        description="Every name starts with this text, case kept (so it starts "
                                    "with a capital, as every real name does); each character "
                                    "must be in the model's vocabulary and it may not be longer "
                                    "than max_length. Empty: no prefix.")
    seed: Annotated[int | None, EmptyMeansDefault()] = Field(
        None, ge=0, le=SEED_MAX,
        description=f"Same seed and options give the same names. {ALLOWED['seed']}; the "
                    "response says which was used.")
    top_k: Annotated[int | None, EmptyMeansDefault()] = Field(
        None, ge=1, le=TOP_K_MAX,
        description=f"Sample only among the k most likely characters at each step: "
                    f"{ALLOWED['top_k']}.")
    max_length: Annotated[int, EmptyMeansDefault()] = Field(
        MAX_LENGTH_DEFAULT, ge=1, le=MAX_LENGTH_LIMIT,
        description="Longest name in characters; a draw that reaches it without ending is "
                    f"dropped, not cut. {ALLOWED['max_length']}.")
    min_length: Annotated[int, EmptyMeansDefault()] = Field(
        1, ge=1, le=MAX_LENGTH_LIMIT,
        description="Shortest name in characters; shorter draws are rejected and replaced "
                    f"within the draw budget. {ALLOWED['min_length']}.")
    suffix: NfcText = Field("", max_length=MAX_LENGTH_LIMIT,
                        description="Only names ending with this text, compared ignoring case, "
                                    "accents, spaces at its ends and a leading hyphen (tepec "
                                    "or -tepec); drawn names "
                                    "that do not are rejected within the draw budget, and "
                                    "`complete` says whether n were found. Empty: any ending.")
    contains: NfcText = Field("", max_length=MAX_LENGTH_LIMIT,
                          description="Only names containing this text, compared ignoring case, "
                                      "accents and spaces at its ends. Empty: no condition.")
    novel: Annotated[bool, EmptyMeansDefault()] = Field(
        True, description="Only names that are not real municipalities (compared ignoring case "
                          "and accents).")
    estado: str | None = Field(None, max_length=ESTADO_MAX,
                               description="Generate every name for this state: "
                                           f"{ALLOWED['estado']}. Without it a conditioned model "
                                           "draws a state per name in proportion to its number "
                                           "of municipalities.")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, data: Any) -> Any:
        """``seed=&top_k=`` (as an HTML form sends them) mean "not given"."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data

    @property
    def filters(self) -> Filters:
        """The ends-with, contains and minimum-length conditions, for ``sampling``."""
        return Filters(self.suffix, self.contains, self.min_length)


class NearestOut(BaseModel):
    name: str = Field(description=(
        "The closest real municipality name; for a name generated for a state (`estado`), the "
        "closest of that state's, unless the name is exactly a real one of other states only."))
    estado: str | None = Field(description="Its state, or null when unknown.")
    distance: int = Field(description="Edit distance (Levenshtein) ignoring case and accents.")


class NameOut(BaseModel):
    name: str
    novel: bool = Field(description="True when the name is not in the real list.")
    nll_per_char: float = Field(description="Mean negative log-likelihood per character (nats), "
                                            "end token included, under the model at T=1.")
    nearest: NearestOut
    estado: str | None = Field(None, description="The state the name was generated for "
                                                 "(models conditioned on the state), else null.")


class NamesResponse(BaseModel):
    model: str
    estado: str | None = Field(None, description="The requested state, as the data names it; "
                                                 "null when none was requested.")
    temperature: float
    seed: int = Field(description="The seed used: repeat it to get the same names.")
    n_requested: int
    complete: bool = Field(description="False when sampling stopped before n names were found; "
                                       "`names` then holds what was found and `stopped` says why.")
    stopped: Literal["budget", "deadline", "shutdown"] | None = Field(
        None, description="Why an incomplete answer stopped: `budget`, the draws allowed for n "
                          "names ran out (rejected repeats and real names count); `deadline`, "
                          "the request used its compute time; `shutdown`, the server is "
                          "stopping. Null when complete.")
    draws: int = Field(description="Sequences sampled, rejected ones included.")
    names: list[NameOut]
    elapsed_ms: float


class EstadoOut(BaseModel):
    code: str = Field(description="Two-digit INEGI code, e.g. 31.")
    name: str = Field(description="The state's name as INEGI lists it, e.g. Yucatán.")
    municipios: int = Field(description="How many municipalities it has.")


class EstadosResponse(BaseModel):
    estados: list[EstadoOut] = Field(description="Every state, in INEGI order.")
    total_municipios: int
    conditioned_models: list[str] = Field(description="Loaded models that accept `estado`.")


class ModelInfo(BaseModel):
    name: str
    kind: str
    description: str = Field(description="One line in Spanish.")
    hyperparameters: dict[str, Any]
    train_config: dict[str, Any]
    n_params: int
    vocab_size: int
    val_nll: float | None = Field(description=(
        "NLL per character (nats) on names the model never saw: its recipe's published "
        "cross-validation mean if there is one, else the checkpoint's validation figure (none "
        "for a distilled student, whose own figure is its distance to its teacher)."))
    val_nll_source: Literal["cross_validation", "checkpoint"] | None = Field(
        description="Where val_nll comes from.")
    train_seconds: float | None
    data_sha256: str | None


class ModelsResponse(BaseModel):
    default: str | None = Field(description="The model used when none is named.")
    models: list[ModelInfo]


class CharProbability(BaseModel):
    char: str
    probability: float = Field(description="P(this character | the ones before it) under the "
                                           "model; the lower, the more surprising.")


class ScoreResponse(BaseModel):
    model: str
    name: str
    nll_per_char: float = Field(description="Mean NLL per character (nats), end token included.")
    estado: str | None = Field(description="For a model conditioned on the state, the state "
                                           "the name was scored for: the one asked for, else the "
                                           "likeliest; null for other models.")
    percentile: float = Field(description="Share (0-100) of real municipality names the model "
                                          "finds less likely: 90 means it sounds more Mexican "
                                          "than 90% of the real ones.")
    n_reference: int = Field(description="How many real names the percentile compares with.")
    characters: list[CharProbability] = Field(description="Each character's probability given "
                                                          "the ones before it, in order.")
    end_probability: float = Field(description="Probability that the name ends after its last "
                                               "character.")


class Health(BaseModel):
    status: str


class FieldError(BaseModel):
    loc: list[str] = Field(description='Where the value was: ["query", "<parameter>"].')
    msg: str = Field(description="The parameter, what is wrong with it and what is allowed.")
    type: str = Field(description="A code for the kind of error (e.g. less_than_equal, "
                                  "unknown_chars, unknown_state).")
    ctx: dict[str, Any] | None = Field(None, description="Details for a program: the "
                                                         "characters the model never saw, the "
                                                         "valid states...")


class InvalidRequest(BaseModel):
    detail: list[FieldError] = Field(description="One entry per invalid parameter.")


class UnknownModelError(BaseModel):
    detail: str
    available: list[str] = Field(description="The loaded models.")


class Unavailable(BaseModel):
    detail: str = Field(description="Why this worker cannot answer now.")


class Failure(BaseModel):
    file: str
    reason: str


class Readiness(BaseModel):
    ready: bool
    reason: str | None = Field(None, description="Why not ready; null when ready.")
    models: list[str]
    busy: int = Field(description="Sampling requests in progress on this worker.")
    capacity: int = Field(description="The most it takes; beyond it, 503 with Retry-After.")
    failures: list[Failure] = Field(description="Model files that failed to load, and why.")
