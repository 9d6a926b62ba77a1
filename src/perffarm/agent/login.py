"""Signing in from the command line: the OAuth 2.0 device authorization grant (RFC 8628)
against a perffarm server, and the user's tokens kept between commands.

The HTTP side is ``perffarm.client.Client`` (retries, the API-version check, typed
errors); the tokens live in ``user-credentials.json`` (``perffarm.client.credentials``:
keyed by server, mode 0600, written atomically; the machine's ``credentials.json`` is
another file: a machine and a person are different principals). An access token that has
expired is refreshed with the refresh token before use. Every failure is a ``LoginError``
(a ``ClientError``) whose message is one line saying what to do.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx

from perffarm.client import credentials as files
from perffarm.client._core import normalize_server, read_error_body
from perffarm.client.credentials import USER_FILE as USER_CREDENTIALS_FILE
from perffarm.client.credentials import UserTokens
from perffarm.client.errors import ClientError
from perffarm.client.sync import Client

__all__ = [
    "USER_CREDENTIALS_FILE",
    "LoginError",
    "UserTokens",
    "api",
    "checked",
    "current",
    "device_login",
    "forget",
    "load",
    "refresh",
    "revoke",
    "save",
    "signed_in_client",
]

CLIENT_ID = "perffarm-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
METADATA_PATH = "/.well-known/oauth-authorization-server"

P = ParamSpec("P")
R = TypeVar("R")


class LoginError(ClientError):
    """One line for the user: what went wrong and what to do."""


def _as_login_error(function: Callable[P, R]) -> Callable[P, R]:
    """Any client error of ``function`` as a LoginError (what the commands catch)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except LoginError:
            raise
        except ClientError as exc:
            raise LoginError(str(exc), exc.code) from exc

    return wrapper


# -- the tokens file -------------------------------------------------------------------


@_as_login_error
def save(creds_dir: str | Path | None, tokens: UserTokens) -> Path:
    return files.save_user_tokens(creds_dir, tokens)


@_as_login_error
def load(creds_dir: str | Path | None, server: str | None) -> UserTokens | None:
    return files.load_user_tokens(creds_dir, server)


@_as_login_error
def forget(creds_dir: str | Path | None, server: str) -> bool:
    return files.delete_user_tokens(creds_dir, server)


# -- the device flow -------------------------------------------------------------------


def _client(server: str, timeout: float, token: str | None = None) -> Client:
    return Client(server, token=token, timeout=timeout, retries=2)


def metadata(client: Client) -> dict[str, Any]:
    """The server's OAuth endpoints (RFC 8414)."""
    response = client.request(
        "GET", METADATA_PATH, api=False, check=False, what="reading its sign-in endpoints"
    )
    if response.status_code != 200:
        raise LoginError(
            f"{client.server} does not offer sign-in ({response.status_code} from "
            f"{METADATA_PATH}): is it a perffarm server, and new enough?"
        )
    try:
        meta = response.json()
        for key in ("device_authorization_endpoint", "token_endpoint"):
            if not isinstance(meta[key], str):
                raise TypeError(key)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise LoginError(
            f"{client.server} answered {METADATA_PATH} with something that is not OAuth "
            "metadata: is it a perffarm server?"
        ) from None
    return dict(meta)


def _post(client: Client, url: str, form: dict[str, str]) -> httpx.Response:
    return client.request("POST", url, data=form, check=False, idempotent=False, what="signing in")


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise LoginError(
            f"the server's answer to the sign-in is not JSON (HTTP {response.status_code})"
        )
    return data


def _tokens_from(server: str, answer: dict[str, Any]) -> UserTokens:
    try:
        return UserTokens(
            server=server,
            access_token=str(answer["access_token"]),
            refresh_token=answer.get("refresh_token"),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(answer.get("expires_in", 3600))),
            scope=str(answer.get("scope", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise LoginError("the server's answer to the sign-in has no usable token") from None


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


@_as_login_error
def device_login(
    server: str,
    *,
    scope: str = "upload",
    show: Callable[[dict[str, Any]], None],
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> UserTokens:
    """Run the device flow: ask for codes, let ``show`` tell the user, poll until done."""
    server = normalize_server(server)
    with _client(server, timeout) as client:
        meta = metadata(client)
        start = _post(
            client,
            meta["device_authorization_endpoint"],
            {"client_id": CLIENT_ID, "scope": scope},
        )
        if start.status_code != 200:
            raise LoginError(f"the server refused to start a sign-in: {_describe(start)}")
        codes = _answer(start)
        show(codes)
        interval = float(codes.get("interval", 5))
        deadline = time.monotonic() + float(codes.get("expires_in", 600))
        while time.monotonic() < deadline:
            sleep(interval)
            answer = _post(
                client,
                meta["token_endpoint"],
                {
                    "grant_type": DEVICE_GRANT,
                    "device_code": str(codes.get("device_code", "")),
                    "client_id": CLIENT_ID,
                },
            )
            if answer.status_code == 200:
                return _tokens_from(server, _answer(answer))
            error = _error_code(answer)
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            if error == "access_denied":
                raise LoginError("the sign-in was denied in the browser")
            if error == "expired_token":
                raise LoginError(
                    "the code expired before it was approved: run `perffarm login` again"
                )
            raise LoginError(f"the sign-in failed: {_describe(answer)}")
    raise LoginError("the code expired before it was approved: run `perffarm login` again")


def _describe(response: httpx.Response) -> str:
    return read_error_body(response)[0]


@_as_login_error
def refresh(tokens: UserTokens, *, timeout: float = 10.0) -> UserTokens:
    if not tokens.refresh_token:
        raise LoginError(f"the sign-in to {tokens.server} expired: run `perffarm login` again")
    with _client(tokens.server, timeout) as client:
        meta = metadata(client)
        answer = _post(
            client,
            meta["token_endpoint"],
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token,
                "client_id": CLIENT_ID,
            },
        )
        if answer.status_code != 200:
            raise LoginError(
                f"the sign-in to {tokens.server} ended ({_describe(answer)}): "
                f"run `perffarm login --server {tokens.server}` again"
            )
        return _tokens_from(tokens.server, _answer(answer))


@_as_login_error
def current(creds_dir: str | Path | None, server: str | None) -> UserTokens:
    """Usable tokens for ``server`` (default: the last one signed in to), refreshed if due."""
    tokens = load(creds_dir, server)
    if tokens is None:
        where = f" to {normalize_server(server)}" if server else ""
        raise LoginError(f"not signed in{where}: run `perffarm login --server URL` first")
    # A minute of margin: a token that expires on the way is as bad as an expired one.
    if tokens.expires_at - timedelta(minutes=1) <= datetime.now(UTC):
        tokens = refresh(tokens)
        save(creds_dir, tokens)
    return tokens


def revoke(tokens: UserTokens, *, timeout: float = 10.0) -> bool:
    """Ask the server to end this sign-in; False when it cannot be reached."""
    try:
        with _client(tokens.server, timeout) as client:
            url = metadata(client).get("revocation_endpoint")
            if not isinstance(url, str):
                return False
            for value in (tokens.refresh_token, tokens.access_token):
                if value:
                    _post(client, url, {"token": value, "client_id": CLIENT_ID})
        return True
    except ClientError:
        return False


# -- the API as the signed-in user -----------------------------------------------------


@_as_login_error
def signed_in_client(creds_dir: str | Path | None, server: str | None, **options: Any) -> Client:
    """A ``Client`` of ``server`` (default: the last one signed in to) as the signed-in
    user, the tokens refreshed first if due; ``options`` go to ``Client``."""
    tokens = current(creds_dir, server)
    options.setdefault("timeout", 30.0)
    return Client(tokens.server, token=tokens.access_token, **options)


@_as_login_error
def api(tokens: UserTokens, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API call as the signed-in user; the answer whatever its status (see ``checked``)."""
    with Client(tokens.server, token=tokens.access_token, timeout=30.0) as client:
        response = client.request(method, path, check=False, **kwargs)
        response.read()
        return response


def checked(response: httpx.Response) -> Any:
    """The JSON of a successful answer; a LoginError with the server's reason otherwise."""
    if response.status_code >= 400:
        raise LoginError(f"the server refused: {_describe(response)}", response.status_code)
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise LoginError(f"the server's answer is not JSON (HTTP {response.status_code})") from None
