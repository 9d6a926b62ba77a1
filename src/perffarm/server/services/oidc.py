"""Sign-in with any OpenID Connect provider: authorization code flow with PKCE (authlib's
client), the ID token's signature checked against the provider's JWKS (joserfc).

The provider is found by discovery (``{issuer}/.well-known/openid-configuration``); what
it tells is kept for ten minutes so that key rotation at the provider is picked up. The
OAuth and JOSE libraries are loaded when a provider is first used, not when the server
starts.
"""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from perffarm.server.settings import OidcProvider

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from joserfc.jwk import KeySet

DISCOVERY_TTL = 600.0
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OidcError(Exception):
    """The sign-in cannot complete; the message is safe to show (no tokens, no codes)."""


@dataclass(frozen=True)
class Identity:
    subject: str
    preferred_name: str
    display_name: str
    email: str | None
    avatar_url: str | None


class OidcClient:
    def __init__(self, provider: OidcProvider, *, timeout: float = 10.0) -> None:
        self.provider = provider
        self.timeout = timeout
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(url)
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(
                f"the sign-in provider {self.provider.name!r} cannot be reached: "
                f"{type(exc).__name__}"
            ) from None

    async def discovery(self) -> dict[str, Any]:
        if self._discovery and time.monotonic() - self._discovery[0] < DISCOVERY_TTL:
            return self._discovery[1]
        issuer = self.provider.issuer.rstrip("/")
        document = await self._get_json(f"{issuer}/.well-known/openid-configuration")
        if document.get("issuer", "").rstrip("/") != issuer:
            raise OidcError(f"provider {self.provider.name!r} reports another issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not document.get(key):
                raise OidcError(f"provider {self.provider.name!r} publishes no {key}")
        self._discovery = (time.monotonic(), document)
        return document

    async def _keys(self, refresh: bool = False) -> KeySet:
        from joserfc.jwk import KeySet

        if refresh or not self._jwks or time.monotonic() - self._jwks[0] > DISCOVERY_TTL:
            document = await self.discovery()
            self._jwks = (time.monotonic(), await self._get_json(document["jwks_uri"]))
        return KeySet.import_key_set(self._jwks[1])  # type: ignore[arg-type]  # JWKS JSON

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        import authlib.deprecate  # noqa: F401  (installs authlib's "always" filter first)

        with warnings.catch_warnings():
            # authlib announces a move to the httpx2 package; httpx is what perffarm ships.
            warnings.simplefilter("ignore")
            from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(
            client_id=self.provider.client_id,
            client_secret=self.provider.client_secret or None,
            scope=self.provider.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    async def start(self, redirect_uri: str) -> tuple[str, str, str, str]:
        """The provider URL to send the browser to, and (state, nonce, code_verifier)."""
        document = await self.discovery()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                document["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                nonce=nonce,
            )
        return url, state, nonce, verifier

    async def finish(self, redirect_uri: str, code: str, verifier: str, nonce: str) -> Identity:
        """Exchange the code, check the ID token, and say who signed in."""
        document = await self.discovery()
        try:
            async with self._client(redirect_uri) as client:
                answer = await client.fetch_token(
                    document["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                )
        except Exception as exc:
            raise OidcError(
                f"the sign-in provider {self.provider.name!r} refused the code "
                f"({getattr(exc, 'error', None) or type(exc).__name__})"
            ) from None
        id_token = answer.get("id_token")
        if not id_token:
            raise OidcError(f"provider {self.provider.name!r} sent no ID token")
        claims = await self._verify(id_token, nonce)
        return _identity(claims)

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import JoseError

        for attempt in range(2):
            try:
                token = jwt.decode(id_token, await self._keys(refresh=attempt > 0), ALGORITHMS)
                break
            except JoseError as exc:
                # An unknown key id may mean the provider rotated its keys: fetch once more.
                if attempt or "key" not in str(exc).lower():
                    raise OidcError(f"the ID token's signature is not valid: {exc.error}") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.provider.issuer.rstrip("/")},
            aud={"essential": True, "value": self.provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise OidcError(
                f"the ID token is not valid: {exc.error} {exc.description or ''}".strip()
            ) from None
        return token.claims


def _identity(claims: dict[str, Any]) -> Identity:
    email = claims.get("email") if claims.get("email_verified", True) else None
    preferred = (
        claims.get("preferred_username") or (email.split("@", 1)[0] if email else None) or "user"
    )
    return Identity(
        subject=str(claims["sub"]),
        preferred_name=str(preferred),
        display_name=str(claims.get("name") or preferred),
        email=email,
        avatar_url=claims.get("picture"),
    )
