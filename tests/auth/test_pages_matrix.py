"""Every page and non-API route (dashboard, load-test compat paths, metrics, sign-in)
against unusable credentials, a private farm, and another signed-in person.

The routes are walked from the app itself, so pages added later are checked too.
"""

from __future__ import annotations

import re

import pytest

from perffarm.server.http.middleware import SIGN_IN_PREFIXES, UNCHECKED_PATHS
from tests.auth.conftest import Farm, make_farm
from tests.auth.test_web import _sign_in
from tests.server.support import make_run

WRITE = {"POST", "PUT", "PATCH", "DELETE"}


def _walk(routes, prefix: str = ""):  # type: ignore[no-untyped-def]
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(route, "methods", None):
            yield prefix + route.path, sorted(route.methods - {"HEAD", "OPTIONS"})


def _pages(farm: Farm) -> list[tuple[str, str]]:
    found = [
        (method, path)
        for path, methods in _walk(farm.client.app.routes)
        for method in methods
        if not path.startswith(("/api/", "/docs"))
    ]
    assert any(p == "/signin" for _, p in found)
    return found


def _fill(path: str) -> str:
    values = {"name": "a-01", "owner": "alice"}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values.get(m.group(1), "1"), path)


def _clean(answer) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    assert "alice@example.org" not in answer.text, answer.request.url


@pytest.mark.parametrize("kind", ["revoked", "expired"])
def test_unusable_tokens_are_refused_on_every_page(farm: Farm, kind: str) -> None:
    token = farm.revoked_token(farm.alice) if kind == "revoked" else farm.expired_token(farm.alice)
    for method, path in _pages(farm):
        answer = farm.client.request(
            method, _fill(path), headers=farm.bearer(token), follow_redirects=False
        )
        _clean(answer)
        assert answer.status_code == 401, (method, path, answer.status_code)
        assert kind in answer.json()["detail"]


def test_private_farm_pages_need_sign_in(database: str) -> None:
    for farm in make_farm(database, private=True):
        for method, path in _pages(farm):
            url = _fill(path)
            answer = farm.client.request(
                method, url, headers={"Accept": "text/html"}, follow_redirects=False
            )
            _clean(answer)
            if path.startswith(SIGN_IN_PREFIXES) or path in UNCHECKED_PATHS:
                assert answer.status_code != 401 or path.startswith("/oauth/")
            elif method == "GET":
                assert answer.status_code == 303, (path, answer.status_code)
                assert answer.headers["location"].startswith("/signin?next=")
            else:
                assert answer.status_code == 401, (method, path, answer.status_code)


def test_pages_never_show_another_persons_email(farm: Farm) -> None:
    alice = farm.bearer(farm.token(farm.alice, "upload"))
    assert (
        farm.client.post(
            "/api/v1/machines", json={"name": "a-01", "owner": "x"}, headers=alice
        ).status_code
        == 201
    )
    run = make_run(machine="a-01")
    farm.client.post(
        "/api/v1/runs",
        content=run.to_json(),
        headers={**alice, "X-Perffarm-Machine": "a-01", "Content-Type": "application/json"},
    )
    assert _sign_in(farm, "bob").status_code == 303
    for method, path in _pages(farm):
        if method != "GET":
            continue
        answer = farm.client.get(
            _fill(path).replace("/runs/1", f"/runs/{run.id}"), follow_redirects=False
        )
        _clean(answer)
        assert answer.status_code < 500, (path, answer.status_code)
