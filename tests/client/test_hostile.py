"""Whatever a server (or what pretends to be one) answers, the client raises a typed error
with one readable line, never a traceback: Hypothesis writes the answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perffarm.client import AsyncClient, Client, ClientError
from tests.client.support import Answer, FaultServer

HEALTHY = Answer.json(
    200, {"status": "ok", "api_version": 1, "server_version": "x", "database": "sqlite"}
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
error_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"detail": json_values | st.text(min_size=1)},
        optional={
            "errors": json_values
            | st.lists(
                st.fixed_dictionaries({"field": json_values, "message": json_values}), max_size=3
            )
        },
    ).map(lambda v: json.dumps(v).encode()),
    # Huge or deep: a megabyte of detail, a nesting no parser's stack takes.
    st.integers(10_000, 1_000_000).map(lambda n: json.dumps({"detail": "x\n" * n}).encode()),
    st.integers(1_000, 100_000).map(lambda n: b"[" * n + b"]" * n),
    st.just(
        json.dumps(
            {"detail": "a\u2028b\x1b[31mred\x00\r\nTraceback (most recent call last):"}
        ).encode()
    ),
)
content_types = st.sampled_from(
    ["application/json", "text/plain", "text/html", "application/octet-stream", ""]
)
statuses = st.sampled_from(
    [200, 201, 204, 301, 400, 401, 403, 404, 409, 413, 418, 422, 429, 500, 502, 503, 504]
)


@pytest.fixture(scope="module")
def hostile() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def _check(error: ClientError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message
    assert len(message) < 1200, len(message)
    assert message.isprintable(), message


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    status=statuses,
    body=error_bodies,
    content_type=content_types,
    retry_after=st.sampled_from(
        [None, "0", "soon", "-5", "1e400", "Wed, 21 Oct 2015 07:28:00 GMT"]
    ),
)
def test_any_answer_to_a_typed_call_is_a_typed_error_or_a_value(
    hostile: FaultServer, status: int, body: bytes, content_type: str, retry_after: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    hostile.answer = lambda method, path: (
        HEALTHY if path == "/api/v1/health" else Answer(status, body, headers)
    )
    with Client(
        hostile.url, retries=1, backoff=0, max_retry_after=0.01, sleep=lambda s: None
    ) as client:
        try:
            client.me()
        except ClientError as error:
            _check(error)
        else:  # pragma: no cover - no random body is a machine
            pytest.fail("garbage was read as a machine")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(status=statuses, body=error_bodies, content_type=content_types)
def test_any_health_answer_is_accepted_or_refused_in_one_line(
    hostile: FaultServer, status: int, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    hostile.answer = lambda method, path: Answer(status, body, headers)

    async def main() -> None:
        async with AsyncClient(hostile.url, retries=0) as client:
            try:
                await client.health()
            except ClientError as error:
                _check(error)

    asyncio.run(main())
