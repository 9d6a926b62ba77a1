"""Property-based: requests generated from the served OpenAPI document never get a 5xx,
and every answer is the one the document promises (status code, media type, body schema),
so that a client generated from the document can trust it.

``scripts/fuzz-api`` runs the same with many more examples per operation."""

from __future__ import annotations

import os
from collections.abc import Callable

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from perffarm.app import create_app
from tests.server.conftest import Api
from tests.server.support import ADMIN, make_run

# Small by default to keep the suite fast; raise it for a deeper search.
EXAMPLES_PER_OPERATION = int(os.environ.get("PERFFARM_FUZZ_EXAMPLES", "15"))
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _checker(operation, headers: dict) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.text)
        case.validate_response(response, checks=CONFORMANCE)

    return check


def test_no_server_error_and_every_answer_as_documented(settings) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings)
    with TestClient(app) as client:
        api = Api(client)
        # Some data, so that queries find something and ingest meets duplicates.
        machine = api.register("fuzz-box", owner="fuzzer")
        api.batch([make_run(machine="fuzz-box", hour=h) for h in range(3)], machine)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 12
        for operation in operations:
            # Ingest with a machine's credentials, everything else as the admin: generated
            # requests then reach the handlers instead of stopping at authentication.
            ingest = operation.method.upper() == "POST" and operation.path.startswith(
                "/api/v1/runs"
            )
            _checker(operation, machine if ingest else {"Authorization": f"Bearer {ADMIN}"})()
