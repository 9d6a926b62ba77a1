"""Web sign-in: CSRF, rate limits, security headers, sessions, private farms, log hygiene."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from perffarm.redact import RedactingFilter, redact
from tests.auth.conftest import PASSWORD, Farm, make_farm
from tests.server.support import make_run


def _csrf(farm: Farm, path: str = "/signin") -> str:
    page = farm.client.get(path)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _sign_in(farm: Farm, name: str = "alice", password: str = PASSWORD, **extra):  # type: ignore[no-untyped-def]
    form = {"username": name, "password": password, "csrf_token": _csrf(farm), **extra}
    return farm.client.post("/signin", data=form, follow_redirects=False)


def test_sign_in_needs_the_csrf_token_and_sets_a_strict_session(farm: Farm) -> None:
    _csrf(farm)
    forged = farm.client.post(
        "/signin",
        data={"username": "alice", "password": PASSWORD, "csrf_token": "x" * 43},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "perffarm_session" not in forged.cookies
    done = _sign_in(farm, next="//evil.example/")
    assert done.status_code == 303 and done.headers["location"] == "/"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    # The session reads, but it never authorizes an API write (no CSRF there).
    assert farm.client.get("/api/v1/me").json()["name"] == "alice"
    write = farm.client.post("/api/v1/tokens", json={"scope": "read"})
    assert write.status_code == 401
    wrong = _sign_in(farm, password="wrong password!")
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text


def test_sign_in_attempts_are_rate_limited_with_retry_after(farm: Farm) -> None:
    answers = [_sign_in(farm, name="bob", password=f"guess-{i}").status_code for i in range(11)]
    assert answers[:10] == [401] * 10 and answers[10] == 429
    limited = _sign_in(farm, name="bob", password=PASSWORD)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "too many sign-in attempts" in limited.json()["detail"]


def test_security_headers_and_hsts_over_https(farm: Farm) -> None:
    page = farm.client.get("/signin")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script" not in page.text and "style=" not in page.text
    assert "strict-transport-security" not in page.headers
    api = farm.client.get("/api/v1/runs")
    assert api.headers["x-content-type-options"] == "nosniff"
    secure = TestClient(farm.client.app, base_url="https://testserver")
    assert "max-age" in secure.get("/signin").headers["strict-transport-security"]


def test_private_farm_needs_a_signed_in_reader(database: str) -> None:
    for farm in make_farm(database, private=True):
        anonymous = farm.client.get("/api/v1/runs")
        assert anonymous.status_code == 401 and "private" in anonymous.json()["detail"]
        assert farm.client.get("/api/v1/health").status_code == 200
        assert farm.client.get("/signin").status_code == 200
        page = farm.client.get("/device", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")
        reader = farm.bearer(farm.token(farm.bob, "read"))
        assert farm.client.get("/api/v1/runs", headers=reader).status_code == 200
        assert _sign_in(farm).status_code == 303
        assert farm.client.get("/api/v1/runs").status_code == 200


def test_user_token_uploads_only_for_machines_the_user_owns(farm: Farm) -> None:
    alice = farm.bearer(farm.token(farm.alice, "upload"))
    bob = farm.bearer(farm.token(farm.bob, "upload"))
    assert (
        farm.client.post(
            "/api/v1/machines", json={"name": "a-01", "owner": "x"}, headers=alice
        ).status_code
        == 201
    )
    spoof = farm.client.post("/api/v1/machines", json={"name": "z-01", "owner": "alice"})
    assert spoof.status_code == 403 and "sign in" in spoof.json()["detail"]
    run = make_run(machine="a-01")

    def post(headers: dict[str, str]):  # type: ignore[no-untyped-def]
        return farm.client.post(
            "/api/v1/runs",
            content=run.to_json(),
            headers={**headers, "Content-Type": "application/json"},
        )

    assert post(alice).status_code == 400
    assert post({**bob, "X-Perffarm-Machine": "a-01"}).status_code == 403
    stored = post({**alice, "X-Perffarm-Machine": "a-01"})
    assert stored.status_code == 201 and stored.json()["machine"] == "a-01"
    # The owner sees the unapproved machine; others do not.
    assert farm.client.get("/api/v1/machines/a-01", headers=alice).status_code == 200
    assert farm.client.get("/api/v1/machines/a-01", headers=bob).status_code == 404
    # ...and its runs: listed and readable for the owner, absent for anybody else.
    run_path = f"/api/v1/runs/{run.id}"
    assert farm.client.get(run_path, headers=alice).status_code == 200
    assert farm.client.get(run_path, headers=bob).status_code == 404
    assert farm.client.get(run_path).status_code == 404
    listed = farm.client.get("/api/v1/runs", headers=alice).json()["items"]
    assert [item["id"] for item in listed] == [str(run.id)]
    assert farm.client.get("/api/v1/runs", headers=bob).json()["items"] == []
    # Disabling the owner stops their tokens at once.
    done = farm.client.post(
        "/api/v1/users/alice/disable", headers=farm.bearer(farm.token(farm.root, "admin"))
    )
    assert done.status_code == 200 and "email" not in done.json()
    refused = farm.client.get("/api/v1/me", headers=alice)
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]


def test_tokens_api_scopes_expiry_listing_and_revocation(farm: Farm) -> None:
    alice = farm.bearer(farm.token(farm.alice, "upload"))
    too_much = farm.client.post("/api/v1/tokens", json={"scope": "admin"}, headers=alice)
    assert too_much.status_code == 403
    bad = farm.client.post(
        "/api/v1/tokens", json={"scope": "read", "expires": "soon"}, headers=alice
    )
    assert bad.status_code == 422 and "90d" in bad.json()["detail"]
    made = farm.client.post(
        "/api/v1/tokens", json={"scope": "read", "expires": "12h", "name": "ci"}, headers=alice
    ).json()
    assert made["token"].startswith("pft_") and made["scopes"] == ["read"]
    listed = farm.client.get("/api/v1/tokens", headers=alice).text
    assert made["id"] in listed and made["token"] not in listed
    bob = farm.bearer(farm.token(farm.bob, "upload"))
    assert farm.client.delete(f"/api/v1/tokens/{made['id']}", headers=bob).status_code == 404
    assert farm.client.delete(f"/api/v1/tokens/{made['id']}", headers=alice).status_code == 200
    gone = farm.client.get("/api/v1/me", headers=farm.bearer(made["token"]))
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    with farm.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM tokens").scalars().all()
    assert made["token"] not in stored and all(len(h) == 64 for h in stored)


def test_admin_token_still_acts_as_admin(farm: Farm) -> None:
    from tests.server.support import ADMIN

    listed = farm.client.get("/api/v1/users", headers=farm.bearer(ADMIN))
    assert listed.status_code == 200
    assert {u["name"] for u in listed.json()["items"]} == {"alice", "bob", "root"}
    assert "@" not in listed.text


@pytest.mark.parametrize(
    "line",
    [
        "GET /device?user_code=ABCD-EFGH&code=secret-code&state=st HTTP/1.1",
        "Authorization: Bearer pft_AAAAAAAAAAAA_" + "s" * 43,
        '{"password": "hunter2hunter2", "token": "abc"}',
    ],
)
def test_secrets_never_reach_the_logs(line: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("perffarm.test.secrets")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="perffarm.test.secrets"):
        logger.info("%s", line)
    text = caplog.text
    for secret in ("secret-code", "s" * 43, "hunter2hunter2"):
        assert secret not in text
    assert redact("nothing secret here") == "nothing secret here"
