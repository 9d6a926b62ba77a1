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

    def __init__(
        self, peer_id: str, layer: str, room: str, step: Step, latency: list[float]
    ) -> None:
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
        #: Message latencies (ms) of this period, one list shared by the worker's peers: the
        #: worker turns it into the period's sketch (``DDSketch.add_many``).
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
        # Called for every message received (a hundred thousand a second in one worker):
        # counters are updated in place and the latency is only collected here.
        size = len(data)
        if size < HEADER.size or isinstance(data, str):
            return
        kind, sender, sequence, sent_at = HEADER.unpack_from(data)
        stats = self.stats
        counter = stats.received_counter
        counter.count += 1
        counter.bytes += size
        counter = stats.all_counter
        counter.count += 1
        counter.bytes += size
        if sequence <= self.last_seen.get(sender, 0):
            counter = stats.duplicate_counter
            counter.count += 1
            counter.bytes += size
            return
        self.last_seen[sender] = sequence
        age = time.time() - sent_at
        counter = stats.expired_counter if age > EXPIRY.get(kind, 5.0) else stats.relevant_counter
        counter.count += 1
        counter.bytes += size
        ms = age * 1000
        stats.latency_sum += ms
        stats.latency_count += 1
        self.latency.append(ms)

    def snapshot(self, seconds: float) -> dict[str, Any]:
        return self.stats.snapshot(
            seconds,
            connected_peers=1 if self.connected else 0,
            known_peers=len(self.last_seen),
            position=(self.position[0], self.position[1], self.position[2]),
        )
