"""Schemathesis against the service's own OpenAPI schema: no input yields a 5xx or breaks the schema.

Every operation gets generated requests that fit the schema (positive) and that do not (negative),
bounded to a few dozen examples each, without deadline and derandomised so a failure reproduces; each
response must not be a server error and must match the status codes, content type and body schema the
OpenAPI document declares. (Schemathesis' `from_fixture` pytest integration does not run under pytest
9, so the test drives its per-operation Hypothesis strategies directly.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from segmentation_pipeline.service import ServiceSettings, create_app
from segmentation_pipeline_tests.service_support import publish_retail_set

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/segments"),
    ("POST", "/segment/manual"),
    ("POST", "/segment/customer"),
    ("POST", "/segment/batch"),
    ("POST", "/leads/segment"),
]


@pytest.fixture(scope="module")
def service_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    publish_retail_set(folder, "run-s", methods=("kmeans", "hdbscan"), leads=True)
    app = create_app(folder, ServiceSettings(api_key_env=None, max_batch_rows=50), watch=False)
    app.state.models.refresh()  # schemathesis calls the app without running its lifespan
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_schema_lists_every_operation(service_schema):
    listed = {(op.ok().method.upper(), op.ok().path) for op in service_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


# /health and /ready take no input, so there is nothing negative to generate for them.
CASES = [(method, path, mode) for method, path in OPERATIONS for mode in GenerationMode
         if mode is GenerationMode.POSITIVE or path not in ("/health", "/ready")]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_error_and_no_schema_violation(service_schema, method, path, mode):
    operation = service_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(checks=CHECKS)

    run()
