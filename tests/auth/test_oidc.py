"""OpenID Connect sign-in against a small but real provider started by the test.

The provider speaks the protocol: discovery, JWKS, an authorize endpoint that approves
the current test person at once, a token endpoint that checks the client secret, the
redirect URI and PKCE (S256), and RS256 ID tokens signed with a key made for the test.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from perffarm.server.settings import OidcProvider
from perffarm.server.store import tables as t
from tests.auth.conftest import make_farm
from tests.support import free_port

CLIENT_ID, CLIENT_SECRET = "perffarm-test", "s3cret-of-the-client"


class Provider:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        # What signs the ID tokens: the published key, unless a test forges with another.
        self.signing_key = self.key
        self.person = {
            "sub": "person-42",
            "name": "Carol C.",
            "email": "carol@example.org",
            "preferred_username": "carol",
        }
        self.codes: dict[str, dict] = {}
        self.pkce_checked = 0
        app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )

    async def discovery(self, _r: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, _r: Request) -> JSONResponse:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> RedirectResponse:
        q = request.query_params
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
        assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "redirect_uri": q["redirect_uri"],
            "challenge": q["code_challenge"],
            "nonce": q["nonce"],
            "person": dict(self.person),
        }
        return RedirectResponse(
            f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302
        )

    async def token(self, request: Request) -> JSONResponse:
        form = dict(parse_qs((await request.body()).decode()))
        form = {k: v[0] for k, v in form.items()}
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id"), form.get("client_secret")
        if (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, 400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        self.pkce_checked += 1
        moment = int(time.time())
        claims = {
            **grant["person"],
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": moment,
            "exp": moment + 300,
            "nonce": grant["nonce"],
            "email_verified": True,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.signing_key)
        return JSONResponse(
            {
                "access_token": "at-" + secrets.token_hex(8),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )

    def __enter__(self) -> Provider:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def provider() -> Iterator[Provider]:
    with Provider() as running:
        yield running


def _sign_in(farm, provider: Provider) -> httpx.Response:  # type: ignore[no-untyped-def]
    start = farm.client.get("/auth/oidc/test?next=/device", follow_redirects=False)
    assert start.status_code == 303, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302
    back = urlparse(at_provider.headers["location"])
    return farm.client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_oidc_sign_in_creates_then_updates_the_one_user(database: str, provider: Provider) -> None:
    settings = {
        "oidc_providers": (
            OidcProvider(
                name="test",
                issuer=provider.issuer,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
            ),
        )
    }
    for farm in make_farm(database, **settings):
        page = farm.client.get("/signin")
        assert "/auth/oidc/test" in page.text
        done = _sign_in(farm, provider)
        assert done.status_code == 303 and done.headers["location"] == "/device", done.text
        assert provider.pkce_checked == 1
        device = farm.client.get("/device")
        assert device.status_code == 200 and "Carol C." in device.text

        provider.person["name"] = "Carol Changed"
        provider.person["email"] = "carol@new.example.org"
        farm.client.cookies.clear()
        assert _sign_in(farm, provider).status_code == 303
        with farm.engine.connect() as conn:
            rows = conn.execute(sa.select(t.users).where(t.users.c.provider == "test")).all()
        assert len(rows) == 1
        assert (rows[0].name, rows[0].display_name, rows[0].email) == (
            "carol",
            "Carol Changed",
            "carol@new.example.org",
        )

        # A replayed callback (same state and code) is refused in one readable line.
        replay = farm.client.get(
            "/auth/oidc/test/callback?code=x&state=used", follow_redirects=False
        )
        assert replay.status_code == 400 and "expired or was used" in replay.text


def _settings(provider: Provider, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {
        "oidc_providers": (
            OidcProvider(
                name="test",
                issuer=provider.issuer,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
            ),
        ),
        **extra,
    }


def test_an_id_token_signed_with_another_key_is_refused(database: str, provider: Provider) -> None:
    provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    for farm in make_farm(database, **_settings(provider)):
        answer = _sign_in(farm, provider)
        assert answer.status_code == 400 and "signature" in answer.text
        assert "perffarm_session" not in answer.cookies
        with farm.engine.connect() as conn:
            assert (
                conn.execute(sa.select(t.users.c.id).where(t.users.c.provider == "test")).first()
                is None
            )


def test_new_users_wait_for_approval_when_the_server_says_so(
    database: str, provider: Provider
) -> None:
    for farm in make_farm(database, **_settings(provider, user_approval="admin")):
        waiting = _sign_in(farm, provider)
        assert waiting.status_code == 403 and "waits for an admin" in waiting.text
        from tests.server.support import ADMIN

        approved = farm.client.post("/api/v1/users/carol/approve", headers=farm.bearer(ADMIN))
        assert approved.status_code == 200
        assert _sign_in(farm, provider).status_code == 303


def test_an_unreachable_provider_is_one_readable_line(database: str) -> None:
    dead = OidcProvider(name="gone", issuer="http://127.0.0.1:1", client_id="c")
    for farm in make_farm(database, oidc_providers=(dead,)):
        answer = farm.client.get("/auth/oidc/gone", follow_redirects=False)
        assert answer.status_code == 502 and "cannot be reached" in answer.text
        assert "Traceback" not in answer.text
