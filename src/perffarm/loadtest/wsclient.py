"""A lean WebSocket client (RFC 6455) for many peers in one process.

A general client hands each message through a queue to a task that awaits it; with a
thousand peers receiving a hundred messages a second each, that machinery costs more than
the peers' own work. Here an ``asyncio.Protocol`` parses frames as bytes arrive and calls
``on_message`` directly: no task per peer, no queue.

Client frames are masked with a fresh random key each, as RFC 6455 requires; peers send
about ten small messages a second, so this costs little next to receiving.

``connect(..., framing="websockets")`` keeps this transport (an ``asyncio.Protocol``, no
task or queue per peer) but leaves the handshake and the frames to the ``websockets``
library's sans-I/O ``ClientProtocol``. It is the ``websockets-sansio`` transport, kept to
measure the choice: ``benchmarks/loadtest_worker.py`` runs both side by side and prints
the difference (the library parses each frame through a generator per read, where
``read_frames`` walks the buffer once).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(ConnectionError):
    pass


def _mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    # XOR through one big integer: C speed without a compiled extension.
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    value = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(len(data), "big")


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def frame(opcode: int, data: bytes, *, masked: bool) -> bytes:
    """One final frame; clients mask with a fresh random key, servers never mask."""
    length = len(data)
    bit = 0x80 if masked else 0
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, bit | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, bit | 127, length)
    if not masked:
        return header + data
    key = os.urandom(4)
    return header + key + _mask(data, key)


def read_frames(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """The complete frames at the start of ``buffer`` (removed from it), unmasked."""
    frames = []
    position = 0
    size = len(buffer)
    # Slices of a view are not copies: each payload is copied once, from the view.
    with memoryview(buffer) as data:
        while size - position >= 2:
            first, second = data[position], data[position + 1]
            length = second & 0x7F
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                length = struct.unpack_from("!H", data, position + 2)[0]
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                length = struct.unpack_from("!Q", data, position + 2)[0]
                header = 10
            masked = second & 0x80
            if masked:
                header += 4
            end = position + header + length
            if end > size:
                break
            payload = bytes(data[position + header : end])
            if masked:
                payload = _mask(payload, bytes(data[position + header - 4 : position + header]))
            position = end
            frames.append((first & 0x80, first & 0x0F, payload))
    del buffer[:position]
    return frames


class _Protocol(asyncio.Protocol):
    def __init__(
        self,
        key: str,
        on_message: Callable[[bytes], None],
        on_close: Callable[[], None],
        on_messages: Callable[[list[bytes]], None] | None = None,
    ):
        self.key = key
        self.on_message = on_message
        self.on_messages = on_messages
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.fragments: list[bytes] = []
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.open
        self.open = False
        if not self.handshake.done():
            self.handshake.set_exception(
                exc or HandshakeError("connection closed during handshake")
            )
        if not self.closed.done():
            self.closed.set_result(None)
        if was_open:
            self.on_close()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            self._check_handshake(head)
            if not self.open:
                return
        self._frames()

    def _check_handshake(self, head: str) -> None:
        lines = head.split("\r\n")
        status = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = accept_key(self.key)
        if len(status) < 2 or status[1] != "101":
            error = HandshakeError(f"the server answered {' '.join(status[1:]) or head[:80]!r}")
        elif headers.get("sec-websocket-accept") != expected:
            error = HandshakeError("the server's Sec-WebSocket-Accept is wrong")
        else:
            self.open = True
            self.handshake.set_result(None)
            return
        self.handshake.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def _frames(self) -> None:
        whole: list[bytes] = []
        for fin, opcode, payload in read_frames(self.buffer):
            # Whole binary messages, the common case, go to the peer together.
            if fin and opcode == OP_BINARY and not self.fragments:
                whole.append(payload)
                continue
            if whole:
                self._deliver(whole)
                whole = []
            self._frame(fin, opcode, payload)
        if whole:
            self._deliver(whole)

    def _deliver(self, messages: list[bytes]) -> None:
        if self.on_messages is not None:
            self.on_messages(messages)
        else:
            for message in messages:
                self.on_message(message)

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if not fin:
                self.fragments.append(payload)
                return
            if self.fragments:
                payload = b"".join([*self.fragments, payload])
                self.fragments.clear()
            self.on_message(payload)
        elif opcode == OP_PING:
            self.send(payload, OP_PONG)
        elif opcode == OP_CLOSE:
            if self.open:
                self.send(payload[:2], OP_CLOSE)
                self.open = False
            if self.transport is not None:
                self.transport.close()

    def send(self, data: bytes, opcode: int = OP_BINARY) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(frame(opcode, data, masked=True))


class _SansIOProtocol(asyncio.Protocol):
    """The same client with the ``websockets`` library's sans-I/O protocol doing the framing.

    The library answers pings and the closing handshake itself; what it asks to write
    (``data_to_send``) is written at once, and its end-of-stream marker half-closes.
    """

    def __init__(
        self,
        url: str,
        on_message: Callable[[bytes], None],
        on_close: Callable[[], None],
        on_messages: Callable[[list[bytes]], None] | None = None,
    ):
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.ws = ClientProtocol(parse_uri(url), max_size=None)
        self.on_message = on_message
        self.on_messages = on_messages
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.open = False
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self.ws.send_request(self.ws.connect())
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.open
        self.open = False
        self.ws.receive_eof()
        if not self.handshake.done():
            self.handshake.set_exception(
                exc or HandshakeError("connection closed during handshake")
            )
        if not self.closed.done():
            self.closed.set_result(None)
        if was_open:
            self.on_close()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Frame, Opcode

        ws = self.ws
        ws.receive_data(data)
        events = ws.events_received()
        self._write()
        whole: list[bytes] = []
        binary = Opcode.BINARY
        for event in events:
            if not isinstance(event, Frame):  # the handshake's response
                self._handshake_done(event)
                continue
            opcode = event.opcode
            # Whole binary messages, the common case, go to the peer together.
            if opcode is binary and event.fin and not self.fragments:
                whole.append(bytes(event.data))
                continue
            if whole:
                self._deliver(whole)
                whole = []
            if opcode in (Opcode.TEXT, binary, Opcode.CONT):
                self.fragments.append(bytes(event.data))
                if event.fin:
                    payload = b"".join(self.fragments)
                    self.fragments.clear()
                    self.on_message(payload)
            elif opcode is Opcode.CLOSE:
                self.open = False
        if whole:
            self._deliver(whole)

    def _handshake_done(self, response: Any) -> None:
        error = self.ws.handshake_exc
        if error is None:
            self.open = True
            self.handshake.set_result(None)
            return
        status = getattr(response, "status_code", None)
        reason = getattr(response, "reason_phrase", "")
        text = f"{status} {reason}".strip() if status is not None else str(error)
        self.handshake.set_exception(HandshakeError(f"the server answered {text!r}"))
        if self.transport is not None:
            self.transport.close()

    def _deliver(self, messages: list[bytes]) -> None:
        if self.on_messages is not None:
            self.on_messages(messages)
        else:
            for message in messages:
                self.on_message(message)

    def _write(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    def send(self, data: bytes, opcode: int = OP_BINARY) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if opcode == OP_CLOSE:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1000
            self.ws.send_close(code)
        else:
            self.ws.send_binary(data)
        self._write()


class WebSocket:
    """One client connection: ``send`` writes a frame now; messages go to ``on_message``."""

    def __init__(self, protocol: _Protocol | _SansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def open(self) -> bool:
        return self._protocol.open

    def send(self, data: bytes) -> None:
        if self._protocol.open:
            self._protocol.send(data)

    def buffered(self) -> int:
        transport = self._protocol.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    async def close(self, timeout: float = 2.0) -> None:
        protocol = self._protocol
        if protocol.open:
            protocol.send(struct.pack("!H", 1000), OP_CLOSE)
            protocol.open = False
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), timeout)
            except TimeoutError:
                pass
        if protocol.transport is not None:
            protocol.transport.close()


async def connect(
    url: str,
    on_message: Callable[[bytes], None],
    on_close: Callable[[], None] = lambda: None,
    *,
    timeout: float = 30,
    on_messages: Callable[[list[bytes]], None] | None = None,
    framing: Literal["perffarm", "websockets"] = "perffarm",
) -> WebSocket:
    """Connect; each message received goes to ``on_message``, or, when ``on_messages`` is
    given, the whole binary messages of one read go to it together (in order).

    ``framing="websockets"``: the handshake and frames by the ``websockets`` library's
    sans-I/O protocol instead of this module's code (same transport, same callbacks)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    loop = asyncio.get_running_loop()
    ssl_context = ssl.create_default_context() if secure else None
    if framing == "websockets":
        _, library = await asyncio.wait_for(
            loop.create_connection(
                lambda: _SansIOProtocol(url, on_message, on_close, on_messages),
                host,
                port,
                ssl=ssl_context,
            ),
            timeout,
        )
        try:
            await asyncio.wait_for(library.handshake, timeout)
        except BaseException:
            if library.transport is not None:
                library.transport.close()
            raise
        return WebSocket(library)
    key = base64.b64encode(os.urandom(16)).decode()
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: _Protocol(key, on_message, on_close, on_messages),
            host,
            port,
            ssl=ssl_context,
        ),
        timeout,
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = host if parts.port is None else f"{host}:{port}"
    transport.write(
        (
            f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        await asyncio.wait_for(protocol.handshake, timeout)
    except BaseException:
        transport.close()
        raise
    return WebSocket(protocol)
