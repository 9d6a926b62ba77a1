"""A simulated peer: its routine sends, its connection receives, its stats count both.

Every message starts with a 17-byte header (kind, sender, sequence, send time) so that the
receiver can tell a duplicate (a sequence it has seen from that sender), an expired
message (older than its kind's useful life) and the latency, without parsing a payload.
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import Any

from perffarm.loadtest.routines import EXPIRY, Step
from perffarm.loadtest.sketch import DDSketch
from perffarm.loadtest.stats import PeerStats

HEADER = struct.Struct("!BIId")
_PADDING = bytes(4096)


class Peer:
    __slots__ = (
        "connected",
        "connection",
        "last_seen",
        "latency",
        "layer",
        "peer_id",
        "position",
        "room",
        "sender",
        "sequence",
        "stats",
        "step",
    )

    def __init__(self, peer_id: str, layer: str, room: str, step: Step, latency: DDSketch) -> None:
        self.peer_id = peer_id
        self.layer = layer
        self.room = room
        self.step = step
        self.sender = zlib.crc32(peer_id.encode())
        self.sequence = 0
        self.position = [0.0, 0.0, 0.0]
        self.stats = PeerStats()
        self.connection: Any = None
        self.connected = False
        #: Highest sequence seen per sender: a lower or equal one is a duplicate.
        self.last_seen: dict[int, int] = {}
        #: Shared by the worker's peers: the worker sends one merged sketch per period.
        self.latency = latency

    def send(self, kind: int, size: int) -> None:
        if not self.connected:
            return
        self.sequence += 1
        data = HEADER.pack(kind, self.sender, self.sequence, time.time())
        data += _PADDING[: max(0, size - HEADER.size)]
        self.connection.send(data)
        self.stats.sent(len(data))

    def on_message(self, data: bytes | str) -> None:
        if isinstance(data, str) or len(data) < HEADER.size:
            return
        kind, sender, sequence, sent_at = HEADER.unpack_from(data)
        previous = self.last_seen.get(sender, 0)
        duplicate = sequence <= previous
        if not duplicate:
            self.last_seen[sender] = sequence
        age = time.time() - sent_at
        expired = age > EXPIRY.get(kind, 5.0)
        self.stats.received(len(data), duplicate=duplicate, expired=expired)
        if not duplicate:
            ms = age * 1000
            self.stats.latency(ms)
            self.latency.add(ms)

    def snapshot(self, seconds: float) -> dict[str, Any]:
        return self.stats.snapshot(
            seconds,
            connected_peers=1 if self.connected else 0,
            known_peers=len(self.last_seen),
            position=(self.position[0], self.position[1], self.position[2]),
        )
