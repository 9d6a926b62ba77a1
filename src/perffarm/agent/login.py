"""Signing in from the command line: the OAuth 2.0 device authorization grant (RFC 8628)
against a perffarm server, and the user's tokens kept between commands.

The tokens live in ``user-credentials.json`` in the credentials directory (the machine
credentials' ``credentials.json`` is another file: a machine and a person are different
principals), keyed by server, mode 0600, written atomically. An access token that has
expired is refreshed with the refresh token before use.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from perffarm.agent.upload import config_dir, normalize_server, write_private_json

USER_CREDENTIALS_FILE = "user-credentials.json"
CLIENT_ID = "perffarm-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class LoginError(Exception):
    """One line for the user: what went wrong and what to do."""


@dataclass
class UserTokens:
    server: str
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat(),
            "scope": self.scope,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserTokens:
        return cls(
            server=data["server"],
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            scope=data.get("scope", ""),
        )


def _path(creds_dir: str | Path | None) -> Path:
    return config_dir(creds_dir) / USER_CREDENTIALS_FILE


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"default": None, "servers": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data.get("servers"), dict):
            raise ValueError("no 'servers' object")
        return data
    except (OSError, ValueError, AttributeError) as exc:
        raise LoginError(
            f"cannot read {path}: {exc} (delete it and run `perffarm login` again)"
        ) from None


def save(creds_dir: str | Path | None, tokens: UserTokens) -> Path:
    path = _path(creds_dir)
    data = _read(path)
    data["servers"][tokens.server] = tokens.to_json()
    data["default"] = tokens.server
    write_private_json(path, data)
    return path


def load(creds_dir: str | Path | None, server: str | None) -> UserTokens | None:
    data = _read(_path(creds_dir))
    key = normalize_server(server) if server else data.get("default")
    entry = data["servers"].get(key) if key else None
    return UserTokens.from_json(entry) if entry else None


def forget(creds_dir: str | Path | None, server: str) -> bool:
    path = _path(creds_dir)
    data = _read(path)
    removed = data["servers"].pop(server, None) is not None
    if data.get("default") == server:
        data["default"] = next(iter(data["servers"]), None)
    if removed:
        write_private_json(path, data)
    return removed


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _post(client: httpx.Client, url: str, form: dict[str, str]) -> httpx.Response:
    try:
        return client.post(url, data=form)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {url}: {_reason(exc)}") from None


def metadata(client: httpx.Client, server: str) -> dict[str, Any]:
    url = f"{server}/.well-known/oauth-authorization-server"
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise LoginError(
            f"cannot reach the server at {server}: {_reason(exc)} (check --server)"
        ) from None
    if response.status_code != 200:
        raise LoginError(
            f"{server} does not offer sign-in ({response.status_code} from {url}): "
            "is it a perffarm server, and new enough?"
        )
    return response.json()


def _tokens_from(server: str, answer: dict[str, Any]) -> UserTokens:
    return UserTokens(
        server=server,
        access_token=answer["access_token"],
        refresh_token=answer.get("refresh_token"),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(answer.get("expires_in", 3600))),
        scope=answer.get("scope", ""),
    )


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
    with httpx.Client(timeout=timeout) as client:
        meta = metadata(client, server)
        start = _post(
            client,
            meta["device_authorization_endpoint"],
            {"client_id": CLIENT_ID, "scope": scope},
        )
        if start.status_code != 200:
            raise LoginError(f"the server refused to start a sign-in: {_describe(start)}")
        codes = start.json()
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
                    "device_code": codes["device_code"],
                    "client_id": CLIENT_ID,
                },
            )
            if answer.status_code == 200:
                return _tokens_from(server, answer.json())
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


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error_description") or body.get("detail") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"


def refresh(tokens: UserTokens, *, timeout: float = 10.0) -> UserTokens:
    if not tokens.refresh_token:
        raise LoginError(f"the sign-in to {tokens.server} expired: run `perffarm login` again")
    with httpx.Client(timeout=timeout) as client:
        meta = metadata(client, tokens.server)
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
    return _tokens_from(tokens.server, answer.json())


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
        with httpx.Client(timeout=timeout) as client:
            meta = metadata(client, tokens.server)
            url = meta.get("revocation_endpoint")
            if not url:
                return False
            for value in (tokens.refresh_token, tokens.access_token):
                if value:
                    client.post(url, data={"token": value, "client_id": CLIENT_ID})
        return True
    except (httpx.HTTPError, LoginError):
        return False


def api(tokens: UserTokens, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One API call as the signed-in user."""
    headers = {"Authorization": f"Bearer {tokens.access_token}", **kwargs.pop("headers", {})}
    try:
        return httpx.request(
            method, f"{tokens.server}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {tokens.server}: {_reason(exc)}") from None


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise LoginError(f"the server refused: {_describe(response)}")
    return response.json()
