"""A real `perffarm server --grpc-address` process, and helpers to talk to it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import httpx

from tests.server.support import ADMIN, ServerProcess
from tests.support import free_port


class GrpcServerProcess(ServerProcess):
    """`perffarm server` with gRPC on a second free port; stopped at exit."""

    def __init__(
        self, database: str, tmp: Path, *, extra: list[str] | None = None, tls: bool = False
    ) -> None:
        self.grpc_port = free_port()
        self.target = f"127.0.0.1:{self.grpc_port}"
        super().__init__(database, tmp, extra=["--grpc-address", self.target, *(extra or [])])
        self.tls = tls

    def start(self) -> GrpcServerProcess:
        super().start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            channel = self.channel()
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return self
            except grpc.FutureTimeoutError:
                pass
            finally:
                channel.close()
        self.stop()
        raise RuntimeError("the gRPC port did not open")

    def channel(self, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
        if credentials is not None:
            return grpc.secure_channel(
                self.target, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
            )
        return grpc.insecure_channel(self.target)

    def http(self, token: str = ADMIN) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def register(self, name: str = "lab-01", owner: str = "alice", approve: bool = True) -> str:
        """A machine's credentials as its bearer token (``name:secret``)."""
        with self.http() as client:
            answer = client.post("/machines", json={"name": name, "owner": owner})
            answer.raise_for_status()
            if approve:
                client.post(f"/machines/{name}/approve").raise_for_status()
        return f"{name}:{answer.json()['secret']}"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def runs_of(server: GrpcServerProcess, **params: Any) -> list[dict]:
    with server.http() as client:
        answer = client.get("/runs", params=params)
        answer.raise_for_status()
        return answer.json()["items"]


def user_token(database: str, name: str, scope: str = "upload") -> str:
    """A personal token of a new user (made in the server's database, as `perffarm user add`
    and `perffarm token create` would)."""
    from datetime import timedelta

    from perffarm.server.settings import database_url
    from perffarm.server.store import tokens, users
    from perffarm.server.store.engine import make_engine

    engine = make_engine(database_url(database))
    try:
        with engine.connect() as conn:
            user = users.create(conn, name)
            _, secret = tokens.issue(
                conn,
                user.id,
                kind="personal",
                scopes=tokens.parse_scopes(scope),
                lifetime=timedelta(days=1),
            )
    finally:
        engine.dispose()
    return secret
