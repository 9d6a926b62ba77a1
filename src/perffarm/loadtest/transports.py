"""Transports: how a peer reaches the system under test.

A transport is a class registered in the entry-point group ``perffarm.transports`` and
loaded through the plug-in registry (``perffarm.plugins``, group ``TRANSPORTS``):
``Transport(target: str)`` with ``async connect(peer) -> Connection``; a connection has
``send(data: bytes)`` (must not block: it is called from the tick loop) and
``async close()``, and hands every message it receives to ``peer.on_message(data)`` (or
several received together, in order, to ``peer.on_messages(list)``, which is cheaper).

Built-ins: ``websocket`` speaks the reference relay's protocol (join a layer and a room
through the URL's query, then every binary frame goes to the others in the room) with
perffarm's lean client; ``websockets-sansio`` is that client with the ``websockets``
library's sans-I/O protocol doing the framing; ``websockets`` does it all through the
library's asyncio client; ``sink`` sends nowhere and receives nothing, to measure the
workers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar, Literal, Protocol, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

from perffarm import plugins


class Connection(Protocol):
    """One peer's link to the system under test."""

    def send(self, data: bytes) -> None:
        """Send one message now; must not block (it is called from the tick loop)."""

    async def close(self) -> None:
        """Close the link; what it receives afterwards is dropped."""


class Transport(Protocol):
    """The contract of the ``perffarm.transports`` group (declared in ``perffarm.plugins``).

    ``Transport(target)`` is made once per worker with ``--target``; ``connect`` is awaited
    once per peer and answers its connection. Every message the connection receives goes
    to ``peer.on_message(data: bytes)``, or, several at once and in order, to
    ``peer.on_messages(list[bytes])`` when the peer has it. When the other side closes,
    the transport sets ``peer.connected = False``.
    """

    def __init__(self, target: str) -> None: ...

    async def connect(self, peer: Any) -> Connection: ...


class WebSocketTransport:
    """The reference relay's protocol over perffarm's lean client (``wsclient``)."""

    #: Who frames the WebSocket messages: ``wsclient``'s own code, or the library's.
    framing: ClassVar[Literal["perffarm", "websockets"]] = "perffarm"

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"the websocket transport needs a ws:// or wss:// URL, not {target!r}")
        self.target = target

    def url(self, peer: Any) -> str:
        parts = urlsplit(self.target)
        query = urlencode({"layer": peer.layer, "room": peer.room, "peer": peer.peer_id})
        return urlunsplit(parts._replace(query=query))

    async def connect(self, peer: Any) -> Connection:
        from perffarm.loadtest import wsclient

        def closed() -> None:
            peer.connected = False

        return await wsclient.connect(
            self.url(peer),
            peer.on_message,
            closed,
            on_messages=getattr(peer, "on_messages", None),
            framing=self.framing,
        )


class WebsocketsSansIOTransport(WebSocketTransport):
    """The lean client's transport with the ``websockets`` sans-I/O protocol's framing.

    Kept beside ``websocket`` so that benchmarks/loadtest_worker.py can show, side by side,
    why perffarm's own frame code stays (docs/loadtests.md, "Speed").
    """

    framing = "websockets"


class WebsocketsLibraryTransport(WebSocketTransport):
    """The same protocol through the ``websockets`` library: slower, a reference to compare."""

    async def connect(self, peer: Any) -> Connection:
        from websockets.asyncio.client import connect

        # No compression: it would cost the workers CPU per message for tiny frames.
        ws = await connect(self.url(peer), compression=None, max_queue=None, open_timeout=30)
        return _LibraryConnection(ws, peer)


class _LibraryConnection:
    def __init__(self, ws: Any, peer: Any) -> None:
        self.ws = ws
        self._reader = asyncio.create_task(self._read(peer))

    async def _read(self, peer: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                peer.on_message(message)
        peer.connected = False

    def send(self, data: bytes) -> None:
        from websockets.asyncio.server import broadcast

        # broadcast() writes synchronously without waiting for the buffer to drain: the
        # tick loop never waits on one slow socket.
        broadcast([self.ws], data)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


class SinkTransport:
    """Messages go nowhere: what the workers cost, with no system under test at all."""

    def __init__(self, target: str = "") -> None:
        self.target = target

    async def connect(self, peer: Any) -> _SinkConnection:
        return _SinkConnection()


class _SinkConnection:
    def send(self, data: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


def load(name: str) -> type[Transport]:
    """The transport class registered as ``name`` (``PluginError`` when unknown or broken)."""
    return cast(type[Transport], plugins.load(plugins.TRANSPORTS, name))
