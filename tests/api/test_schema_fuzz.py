"""Property-based runs over the OpenAPI schema (schemathesis) against the app with a real server behind it:
generated requests never get a 5xx, every answer matches the schema (status codes, content types, bodies,
headers), and a request the schema calls valid is accepted."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from taskplane.api import create_app
from tests.apps.core_app import tp

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(tp))

# negative_data_rejection is left out: in a query string every value is text, so "name=false" or a repeated
# parameter that it calls a type violation is a valid string to the API.
EXCLUDED: list[Any] = [positive_data_acceptance, negative_data_rejection]

# What OpenAPI cannot state: a dead-letter selection is ids, or a task/reason filter, or all (not several,
# not none), a rule across query parameters; the endpoints' descriptions say it.
SELECTIONS = schema.exclude(path_regex="^/api/v1/dead-letters(/requeue)?$", method_regex="^(DELETE|POST)$")


@pytest.fixture
def admin_headers(redis_url: str) -> dict[str, str]:
    _, token = tp.api_keys.create("fuzz", ["admin"])
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_match_the_schema(
    case: Case[Any], admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=admin_headers, excluded_checks=EXCLUDED)


@SELECTIONS.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_request_the_published_schema_calls_valid_is_accepted(
    case: Case[Any], admin_headers: dict[str, str]
) -> None:
    """Declared queues, countdown or eta, a cursor's shape: the schema states what the API checks (four
    schema-valid requests were answered 422 before)."""
    case.call_and_validate(headers=admin_headers, checks=[positive_data_acceptance])
