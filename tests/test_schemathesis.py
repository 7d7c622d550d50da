"""Property-based fuzzing of the OpenAPI schema: no 500s, every response matches the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app


@pytest.fixture(scope="module")
def api_schema(tiny_models_folder):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(tiny_models_folder))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case):
    # whether a prefix or name is acceptable depends on the model's vocabulary, which a schema
    # cannot state: schema-valid requests may get a 422, every other check applies
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
