"""The reference system under test: a WebSocket relay ("lighthouse").

A peer connects to ``ws://HOST:PORT/?layer=L&room=R&peer=ID``; every binary or text
message it sends goes to every other peer connected to the same layer and room,
unchanged. The relay never parses a message, so it measures transport and fan-out.

It is an ``asyncio.Protocol`` on perffarm's own frame code: a relayed message is framed
once and the same bytes are written to every member of the room, where a general server
would frame and queue it once per recipient. Frames for one member are gathered while the
event loop works through the sockets that are ready, and written together once it is done
with them: one system call per member and loop pass instead of one per message, on the
relay and on the receiving side alike. A member whose socket cannot keep up (more than
``MAX_BUFFER`` bytes waiting) misses messages, which are counted as dropped, instead of
growing the relay's memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from perffarm.loadtest.wsclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    accept_key,
    frame,
    read_frames,
)

MAX_BUFFER = 4 * 1024 * 1024
MAX_HEAD = 16 * 1024


class Lighthouse:
    """The rooms and the relay's own counters."""

    def __init__(self) -> None:
        self.rooms: dict[tuple[str, str], set[_Member]] = defaultdict(set)
        self.received = 0
        self.relayed = 0
        self.dropped = 0
        #: Socket writes of relayed frames: below ``relayed`` when frames were gathered.
        self.writes = 0
        #: Members with frames waiting for the end of this loop pass (see ``flush``).
        self.waiting: set[_Member] = set()
        self._flush_scheduled = False

    def queue(self, member: _Member, data: bytes) -> None:
        if not member.pending:
            self.waiting.add(member)
        member.pending.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write each waiting member's frames, in the order they were relayed."""
        self._flush_scheduled = False
        waiting, self.waiting = self.waiting, set()
        for member in waiting:
            pending, member.pending = member.pending, []
            transport = member.transport
            if transport is not None and not transport.is_closing():
                transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
                self.writes += 1

    def protocol(self) -> _Member:
        return _Member(self)

    @property
    def connections(self) -> int:
        return sum(len(m) for m in self.rooms.values())


class _Member(asyncio.Protocol):
    def __init__(self, relay: Lighthouse) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.room: tuple[str, str] | None = None
        self.fragments: list[bytes] = []
        self.opcode = OP_BINARY
        #: Frames relayed to this member in the current loop pass, not yet written.
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.room is not None:
            members = self.relay.rooms.get(self.room)
            if members is not None:
                members.discard(self)
                if not members:
                    del self.relay.rooms[self.room]
            self.room = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.room is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._refuse("431 Request Header Fields Too Large")
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            if not self._upgrade(head):
                return
        for fin, opcode, payload in read_frames(self.buffer):
            self._frame(fin, opcode, payload)

    def _refuse(self, status: str) -> None:
        assert self.transport is not None
        self.transport.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
        self.transport.close()

    def _upgrade(self, head: str) -> bool:
        lines = head.split("\r\n")
        request = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key")
        if len(request) != 3 or request[0] != "GET" or not key:
            self._refuse("400 Bad Request")
            return False
        if headers.get("upgrade", "").lower() != "websocket":
            self._refuse("426 Upgrade Required")
            return False
        query = parse_qs(urlsplit(request[1]).query)
        self.room = (query.get("layer", ["default"])[0], query.get("room", ["default"])[0])
        assert self.transport is not None
        self.transport.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
            ).encode()
        )
        self.relay.rooms[self.room].add(self)
        return True

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if opcode != OP_CONT:
                self.opcode = opcode
            if not fin:
                self.fragments.append(payload)
                return
            if self.fragments:
                payload = b"".join([*self.fragments, payload])
                self.fragments.clear()
            self._relay(frame(self.opcode, payload, masked=False))
        elif opcode == OP_PING and self.transport is not None:
            self.transport.write(frame(OP_PONG, payload, masked=False))
        elif opcode == OP_CLOSE and self.transport is not None:
            self.transport.write(frame(OP_CLOSE, payload[:2], masked=False))
            self.transport.close()

    def _relay(self, data: bytes) -> None:
        relay = self.relay
        relay.received += 1
        assert self.room is not None
        for member in relay.rooms[self.room]:
            if member is self:
                continue
            transport = member.transport
            if transport is None or transport.is_closing():
                continue
            if transport.get_write_buffer_size() > MAX_BUFFER:
                relay.dropped += 1
                continue
            relay.queue(member, data)
            relay.relayed += 1


async def serve(host: str, port: int, ready: asyncio.Event | None = None) -> None:
    """Relay until SIGTERM or SIGINT."""
    lighthouse = Lighthouse()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(lighthouse.protocol, host, port, backlog=4096)
    async with server:
        if ready is not None:
            ready.set()
        await stop.wait()
