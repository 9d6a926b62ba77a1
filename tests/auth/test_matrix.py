"""Every API route against every kind of wrong caller: the documented refusal, no leaks.

The routes are read from the app's own OpenAPI document, so a route added later is checked too.
"""

from __future__ import annotations

import re

import pytest

from perffarm.server.http.middleware import UNCHECKED_PATHS
from tests.auth.conftest import Farm
from tests.server.support import ADMIN, make_run

WRITE = {"POST", "PUT", "PATCH", "DELETE"}
# Writes anybody may attempt without credentials (documented in docs/auth.md).
ANONYMOUS_WRITES = {("POST", "/api/v1/machines")}
# Writes any signed-in user may do for themselves.
OWN_WRITES = {
    ("POST", "/api/v1/machines"),
    ("POST", "/api/v1/tokens"),
    # Load tests belong to nobody in particular: any signed-in user may start one.
    ("POST", "/api/v1/loadtests"),
}
USER_ONLY_READS = {"/api/v1/me", "/api/v1/tokens", "/api/v1/users"}


def _routes(farm: Farm) -> list[tuple[str, str]]:
    # The OpenAPI document lists every API route the app serves (this FastAPI nests
    # included routers, so app.routes is not flat).
    found = []
    for path, operations in farm.client.app.openapi()["paths"].items():
        if path.startswith("/api/"):
            found += [(m.upper(), path) for m in sorted(operations) if m.upper() != "HEAD"]
    assert len(found) > 15, found
    return found


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values.get(m.group(1), "1"), path)


def _assert_clean(response, farm: Farm, secrets: list[str]) -> None:  # type: ignore[no-untyped-def]
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    if response.request.url.path == "/api/v1/me":
        # The caller's own profile is the one place their own email is shown.
        text = re.sub(r'"email":"[^"]*"', "", text, count=1)
    assert "@example.org" not in text, f"an email leaked: {text[:300]}"
    for secret in secrets:
        assert secret not in text
    assert ADMIN not in text


def _refusal(response, status: set[int]) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code in status, (
        response.request.method,
        response.request.url,
        response.status_code,
        response.text,
    )
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.fixture
def world(farm: Farm) -> dict:
    alice_token = farm.token(farm.alice, "upload")
    registered = farm.client.post(
        "/api/v1/machines",
        json={"name": "a-01", "owner": "whoever"},
        headers=farm.bearer(alice_token),
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["owner"] == "alice"
    machine_auth = {"Authorization": f"Bearer a-01:{registered.json()['secret']}"}
    run = make_run(machine="a-01")
    stored = farm.client.post(
        "/api/v1/runs",
        content=run.to_json(),
        headers={**machine_auth, "Content-Type": "application/json"},
    )
    assert stored.status_code == 201, stored.text
    token_id = farm.client.get("/api/v1/tokens", headers=farm.bearer(alice_token)).json()["items"][
        0
    ]["id"]
    return {
        "alice_token": alice_token,
        "machine_secret": registered.json()["secret"],
        "values": {"name": "a-01", "run_id": str(run.id), "token_id": token_id},
    }


def _call(farm: Farm, method: str, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    kwargs = {"json": {}} if method in WRITE else {}
    return farm.client.request(method, path, headers=headers, **kwargs)


def test_no_credentials(farm: Farm, world: dict) -> None:
    for method, route in _routes(farm):
        path = _fill(route, world["values"])
        answer = _call(farm, method, path, {})
        _assert_clean(answer, farm, [world["alice_token"], world["machine_secret"]])
        if method in WRITE and (method, route) not in ANONYMOUS_WRITES:
            # 422: a route that checks its caller after validating the body (alerts today)
            # refuses the empty body first; it still never acts.
            _refusal(answer, {401, 403, 422})
        elif route in USER_ONLY_READS:
            _refusal(answer, {401})
        else:
            assert answer.status_code < 500


def test_another_users_token(farm: Farm, world: dict) -> None:
    bob = farm.bearer(farm.token(farm.bob, "upload"))
    bob["X-Perffarm-Machine"] = "a-01"
    for method, route in _routes(farm):
        path = _fill(route, world["values"])
        answer = _call(farm, method, path, bob)
        _assert_clean(answer, farm, [world["alice_token"], world["machine_secret"]])
        if method in WRITE and (method, route) not in OWN_WRITES:
            _refusal(answer, {401, 403, 404, 422})
        elif route == "/api/v1/users":
            _refusal(answer, {403})
        else:
            assert answer.status_code < 500
    # Bob's own view of himself is his; Alice's email never reaches him.
    assert farm.client.get("/api/v1/me", headers=bob).json()["email"] == "bob@example.org"


@pytest.mark.parametrize("kind", ["revoked", "expired", "garbage"])
def test_unusable_tokens_are_refused_everywhere(farm: Farm, world: dict, kind: str) -> None:
    token = {
        "revoked": lambda: farm.revoked_token(farm.alice),
        "expired": lambda: farm.expired_token(farm.alice),
        "garbage": lambda: "pft_AAAAAAAAAAAA_" + "b" * 43,
    }[kind]()
    word = {"revoked": "revoked", "expired": "expired", "garbage": "unknown token"}[kind]
    for method, route in _routes(farm):
        path = _fill(route, world["values"])
        answer = _call(farm, method, path, farm.bearer(token))
        _assert_clean(answer, farm, [token, world["alice_token"]])
        if route in UNCHECKED_PATHS:
            assert answer.status_code == 200
            continue
        _refusal(answer, {401})
        assert word in answer.json()["detail"]


def test_read_only_token_cannot_write(farm: Farm, world: dict) -> None:
    reader = farm.bearer(farm.token(farm.alice, "read"))
    reader["X-Perffarm-Machine"] = "a-01"
    for method, route in _routes(farm):
        path = _fill(route, world["values"])
        answer = _call(farm, method, path, reader)
        _assert_clean(answer, farm, [world["alice_token"]])
        if method in WRITE:
            _refusal(answer, {403})
            assert "read" in answer.json()["detail"]
        else:
            assert answer.status_code < 500


def test_revoked_machine_secret_is_refused(farm: Farm, world: dict) -> None:
    machine = {"Authorization": f"Bearer a-01:{world['machine_secret']}"}
    assert farm.client.get("/api/v1/machines/me", headers=machine).status_code == 200
    bob = farm.bearer(farm.token(farm.bob, "upload"))
    assert farm.client.post("/api/v1/machines/a-01/revoke", headers=bob).status_code == 403
    done = farm.client.post(
        "/api/v1/machines/a-01/revoke", headers=farm.bearer(world["alice_token"])
    )
    assert done.status_code == 200, done.text
    refused = farm.client.get("/api/v1/machines/me", headers=machine)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    fresh = farm.client.post("/api/v1/machines/a-01/secret", headers=farm.bearer(ADMIN))
    assert fresh.status_code == 200
    again = {"Authorization": f"Bearer a-01:{fresh.json()['secret']}"}
    assert farm.client.get("/api/v1/machines/me", headers=again).status_code == 200
