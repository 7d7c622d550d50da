"""Property-based fuzzing of the OpenAPI schema: no 500s, every response matches the schema.

Each operation is fuzzed through hypothesis directly, with the strategies schemathesis derives
from the schema, rather than through schemathesis' pytest plugin: the plugin reaches into
pytest's private node attributes, and pytest 9.2 removed the one it used.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from app.main import create_app

# the routes come from the code alone (no model is loaded to list them); only those that take
# parameters can be sent invalid ones
PATHS = create_app().openapi()["paths"]
CASES = sorted((path, method.upper(), mode) for path, methods in PATHS.items()
               for method, spec in methods.items() for mode in GenerationMode
               if mode is GenerationMode.POSITIVE or spec.get("parameters"))


@pytest.fixture(scope="module")
def api_schema(tiny_models_folder):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(tiny_models_folder))


def test_every_route_is_fuzzed():
    fuzzed = {(path, mode.value) for path, _, mode in CASES}
    assert fuzzed >= {("/api/names", "positive"), ("/api/names", "negative"),
                      ("/api/score", "positive"), ("/api/score", "negative"),
                      ("/api/models", "positive"), ("/readyz", "positive")}


@pytest.mark.parametrize(("path", "method", "mode"), CASES,
                         ids=[f"{m} {p} {mode.value}" for p, m, mode in CASES])
def test_api_never_fails_and_matches_its_schema(api_schema, path, method, mode):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case):
        # whether a prefix or name is acceptable depends on the model's vocabulary, which a
        # schema cannot state: schema-valid requests may get a 422, every other check applies
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()
