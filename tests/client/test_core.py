"""The rules of perffarm.client (retries, backoff, the API-version check, typed errors),
for the sync and the async client alike, against a real perffarm server; the faults it
will not produce on demand come from a tiny real HTTP server in front of it."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from perffarm.client import (
    AsyncClient,
    Client,
    ClientError,
    Conflict,
    Forbidden,
    IncompatibleServer,
    Invalid,
    NotFound,
    ServerError,
    ServerUnreachable,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from perffarm.model.api import API_VERSION, API_VERSION_HEADER
from tests.client.conftest import Farm
from tests.client.support import Answer, FaultServer
from tests.server.support import ADMIN, ServerProcess
from tests.support import free_port

KINDS = ["sync", "async"]


def use(kind: str, server: str, method: str, *args: Any, **options: Any) -> Any:
    """``Client(server, **options).method(*args)``, or the same with ``AsyncClient``."""
    waits: list[float] | None = options.pop("waits", None)
    if kind == "sync":
        if waits is not None:
            options["sleep"] = lambda s: (waits.append(s), time.sleep(s))
        with Client(server, **options) as client:
            return getattr(client, method)(*args)

    async def main() -> Any:
        if waits is not None:

            async def sleep(seconds: float) -> None:
                waits.append(seconds)
                await asyncio.sleep(seconds)

            options["sleep"] = sleep
        async with AsyncClient(server, **options) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(main())


def fails(
    kind: str, error: type[ClientError], server: str, method: str, *args: Any, **options: Any
) -> ClientError:
    with pytest.raises(error) as failure:
        use(kind, server, method, *args, **options)
    message = str(failure.value)
    assert "\n" not in message and "Traceback" not in message
    return failure.value


# -- retries ---------------------------------------------------------------------------


def test_retries_until_a_server_that_was_down_comes_up(tmp_path: Path) -> None:
    """A real perffarm process started after the client began trying."""
    port = free_port()
    waits: list[float] = []
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["health"] = use(
                "sync", f"http://127.0.0.1:{port}", "health",
                retries=60, backoff=0.2, max_backoff=1.0, waits=waits,
            )  # fmt: skip
        except ClientError as exc:
            outcome["error"] = exc

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.5)
    server = ServerProcess(str(tmp_path / "farm.db"), tmp_path, port=port).start()
    try:
        asker.join(timeout=120)
    finally:
        server.stop()
    assert "error" not in outcome, outcome
    assert outcome["health"].api_version == API_VERSION
    assert len(waits) >= 2


@pytest.mark.parametrize("kind", KINDS)
def test_retries_until_a_proxy_that_was_down_comes_up(kind: str, farm: Farm) -> None:
    port = free_port()
    waits: list[float] = []
    faults = FaultServer(farm.url, port=port)
    opener = threading.Timer(1.0, faults.start)
    opener.start()
    try:
        me = use(kind, faults.url, "me", token=farm.token, retries=10, backoff=0.2, waits=waits)
    finally:
        opener.join()
        faults.stop()
    assert me.name == farm.machine
    assert len(waits) >= 2  # refused at least twice before it listened


@pytest.mark.parametrize("kind", KINDS)
def test_503_with_retry_after_is_waited_then_answered(kind: str, farm: Farm) -> None:
    waits: list[float] = []
    with FaultServer(farm.url) as faults:
        faults.only = "/machines/me"
        busy = Answer.json(503, {"detail": "the database is unavailable; retry later"})
        busy.headers["Retry-After"] = "1"
        faults.script.extend([busy, busy])
        me = use(kind, faults.url, "me", token=farm.token, backoff=0.01, waits=waits)
    assert me.name == farm.machine
    assert faults.paths().count("/api/v1/machines/me") == 3
    assert len(waits) == 2 and all(1.0 <= w < 1.1 for w in waits), waits


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_after_too_long_ends_the_retries_at_once(kind: str, farm: Farm) -> None:
    waits: list[float] = []
    with FaultServer(farm.url) as faults:
        faults.only = "/machines/me"
        faults.script.append(Answer.json(429, {"detail": "slow down"}, **{"Retry-After": "3600"}))
        error = fails(kind, Unavailable, faults.url, "me", token=farm.token, waits=waits)
    assert waits == []
    assert error.status == 429 and error.retry_after == 3600
    assert "asks to wait 3600 s" in str(error) and "retry later" in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_502_is_retried_only_for_what_may_be_sent_twice(kind: str, farm: Farm) -> None:
    bad_gateway = Answer(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})
    with FaultServer(farm.url) as faults:
        faults.only = "/machines"
        faults.script.append(bad_gateway)
        # A registration sent twice would be refused as a name taken: not retried.
        error = fails(kind, Unavailable, faults.url, "register_machine", "m-502", "bob",
                      token=ADMIN, backoff=0)  # fmt: skip
        assert "HTTP 502 Bad Gateway" in str(error) and "after 1 try" in str(error)
        faults.script.append(bad_gateway)
        me = use(kind, faults.url, "me", token=farm.token, backoff=0)
    assert me.name == farm.machine
    assert faults.paths().count("/api/v1/machines/me") == 2


@pytest.mark.parametrize("kind", KINDS)
def test_4xx_answers_are_not_retried(kind: str, farm: Farm) -> None:
    with FaultServer(farm.url) as faults:
        fails(kind, Unauthorized, faults.url, "me", token=f"{farm.machine}:wrong", backoff=0)
        fails(kind, Invalid, faults.url, "baseline", {"project": "p", "mode": "sideways"})
    assert faults.paths().count("/api/v1/machines/me") == 1
    assert sum(p.startswith("/api/v1/baseline") for p in faults.paths()) == 1


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    waits: list[float] = []
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(url, retries=6, backoff=0.5, max_backoff=4, sleep=waits.append)
    with client, pytest.raises(ServerUnreachable, match="7 tries") as failure:
        client.health()
    assert failure.value.tries == 7
    floors = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(waits) == len(floors)
    assert all(floor <= wait <= floor + 0.5 for floor, wait in zip(floors, waits, strict=True))
    assert len(set(waits)) > 1  # jittered


# -- the API version -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_of_another_major_api_version_is_refused(kind: str, farm: Farm) -> None:
    with FaultServer(farm.url) as faults:
        faults.health = {"api_version": API_VERSION + 1, "min_client_api_version": API_VERSION + 1}
        error = fails(kind, IncompatibleServer, faults.url, "me", token=farm.token)
        assert "too new" in str(error) and "upgrade perffarm on this machine" in str(error)
        faults.health = {"api_version": API_VERSION - 1}
        error = fails(kind, IncompatibleServer, faults.url, "me", token=farm.token)
        assert "too old" in str(error) and "upgrade the server" in str(error)
        # Newer, but still speaking this client's version: accepted.
        faults.health = {"api_version": API_VERSION + 1, "min_client_api_version": API_VERSION}
        assert use(kind, faults.url, "me", token=farm.token).name == farm.machine
    # Refused before anything else was sent; checked once per client.
    assert faults.paths().count("/api/v1/machines/me") == 1
    assert faults.paths().count("/api/v1/health") == 3


@pytest.mark.parametrize("kind", KINDS)
def test_what_is_no_perffarm_server_is_named(kind: str) -> None:
    with FaultServer() as elsewhere:
        error = fails(kind, IncompatibleServer, elsewhere.url, "me")
        assert "not a perffarm results server" in str(error) and "check --server" in str(error)
        elsewhere.answer = lambda method, path: Answer(
            200, b"hello", {"Content-Type": "text/plain"}
        )
        error = fails(kind, IncompatibleServer, elsewhere.url, "me")
        assert "not a perffarm health answer" in str(error)


def test_the_version_check_can_be_skipped(farm: Farm) -> None:
    with (
        FaultServer(farm.url) as faults,
        Client(faults.url, token=farm.token, check_version=False) as client,
    ):
        assert client.me().name == farm.machine
    assert faults.paths() == ["/api/v1/machines/me"]


@pytest.mark.parametrize("kind", KINDS)
def test_requests_say_who_sends_them(kind: str, farm: Farm) -> None:
    with FaultServer(farm.url) as faults:
        use(
            kind,
            faults.url,
            "me",
            token=farm.token,
            machine="as-this-one",
            headers={"X-Extra": "1"},
        )
    headers = {k.lower(): v for k, v in faults.seen[-1].headers.items()}
    assert headers["authorization"] == f"Bearer {farm.token}"
    assert headers["x-perffarm-machine"] == "as-this-one"
    assert headers["user-agent"].startswith("perffarm/")
    assert headers[API_VERSION_HEADER.lower()] == str(API_VERSION)
    assert headers["x-extra"] == "1"


# -- typed errors ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_refusal_of_a_real_server_is_its_typed_error(kind: str, farm: Farm) -> None:
    error = fails(kind, Unauthorized, farm.url, "me", token=f"{farm.machine}:wrong")
    assert error.status == error.code == 401
    assert "refused the credentials while checking this machine" in str(error)
    assert f"machine {farm.machine!r}" in error.detail and "perffarm machine register" in str(error)

    error = fails(kind, Forbidden, farm.url, "approve_machine", farm.machine, token=farm.token)
    assert error.status == 403 and "this needs an admin" in error.detail
    assert f"does not allow approving machine {farm.machine!r}" in str(error)

    error = fails(kind, NotFound, farm.url, "approve_machine", "nobody-here", token=ADMIN)
    assert error.status == 404 and error.detail == "no machine named 'nobody-here'"

    error = fails(kind, Conflict, farm.url, "register_machine", farm.machine, "x", token=ADMIN)
    assert error.status == 409 and "already registered: choose another name" in str(error)

    error = fails(kind, Invalid, farm.url, "baseline", {"project": "p", "mode": "sideways"})
    assert error.status == 422 and "query.mode" in str(error)
    assert [problem.field for problem in error.errors] == ["query.mode"]


@pytest.mark.parametrize("kind", KINDS)
def test_failures_perffarm_will_not_show_on_demand(kind: str, farm: Farm) -> None:
    with FaultServer(farm.url) as faults:
        faults.only = "/runs/batch"
        faults.script.append(Answer.json(413, {"detail": "request body too large (limit 1 KiB)"}))
        error = fails(kind, TooLarge, faults.url, "submit_runs", [], token=farm.token)
        assert "larger than it takes" in str(error) and "--max-body" in str(error)

        faults.script.append(Answer(500, b"Internal Server Error", {"Content-Type": "text/plain"}))
        error = fails(kind, ServerError, faults.url, "submit_runs", [], token=farm.token)
        assert "failed (HTTP 500: Internal Server Error)" in str(error)
        assert "look at its log" in str(error)

        faults.script.extend([Answer.json(503, {"detail": "restarting"})] * 3)
        error = fails(kind, Unavailable, faults.url, "submit_runs", [], token=farm.token,
                      retries=2, backoff=0)  # fmt: skip
        assert "busy or unavailable (HTTP 503: restarting)" in str(error)
        assert "after 3 tries: retry later" in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreachable_server_is_named_with_the_tries(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = fails(kind, ServerUnreachable, url, "me", retries=2, backoff=0)
    assert f"cannot reach the results server at {url}" in str(error)
    assert "3 tries" in str(error) and "check that it runs" in str(error)
    assert error.code is None


@pytest.mark.parametrize("url", ["ftp://farm", "http:///no-host", "http://[::1"])
def test_a_url_that_is_no_server_url_is_said_so(url: str) -> None:
    with pytest.raises(ClientError, match="server URL"):
        Client(url)


def test_credentials_go_to_the_server_only_never_where_an_answer_points() -> None:
    ok = Answer.json(200, {})
    with FaultServer() as home, FaultServer() as elsewhere:
        home.answer = elsewhere.answer = lambda method, path: ok
        with Client(home.url, token="lab:secret", headers={"X-Perffarm-Loadtest-Token": "t"},
                    check_version=False) as client:  # fmt: skip
            client.request("POST", f"{home.url}/oauth/token", api=False)
            client.request("POST", f"{elsewhere.url}/oauth/token", api=False)
    mine = {k.lower() for k in home.seen[0].headers}
    theirs = {k.lower() for k in elsewhere.seen[0].headers}
    assert {"authorization", "x-perffarm-loadtest-token", "user-agent"} <= mine
    assert "authorization" not in theirs and "x-perffarm-loadtest-token" not in theirs
    assert "user-agent" in theirs
