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
        if isinstance(data, bytes):
            self.on_messages([data])

    def on_messages(self, messages: list[bytes]) -> None:
        """The messages of one read, in order. A worker's peers receive a hundred thousand
        a second: counters are added up once per read, and latencies only collected."""
        now = time.time()
        stats = self.stats
        last_seen = self.last_seen
        latencies = self.latency
        unpack, header = HEADER.unpack_from, HEADER.size
        counted = size_sum = 0
        duplicates = duplicate_bytes = 0
        expired = expired_bytes = 0
        latency_sum = 0.0
        latency_count = 0
        for data in messages:
            size = len(data)
            if size < header:
                continue
            kind, sender, sequence, sent_at = unpack(data)
            counted += 1
            size_sum += size
            if sequence <= last_seen.get(sender, 0):
                duplicates += 1
                duplicate_bytes += size
                continue
            last_seen[sender] = sequence
            age = now - sent_at
            if age > EXPIRY.get(kind, 5.0):
                expired += 1
                expired_bytes += size
            ms = age * 1000
            latency_sum += ms
            latency_count += 1
            latencies.append(ms)
        if not counted:
            return
        for counter, count, size in (
            (stats.received_counter, counted, size_sum),
            (stats.all_counter, counted, size_sum),
            (stats.duplicate_counter, duplicates, duplicate_bytes),
            (stats.expired_counter, expired, expired_bytes),
            (
                stats.relevant_counter,
                counted - duplicates - expired,
                size_sum - duplicate_bytes - expired_bytes,
            ),
        ):
            counter.count += count
            counter.bytes += size
        stats.latency_sum += latency_sum
        stats.latency_count += latency_count

    def snapshot(self, seconds: float) -> dict[str, Any]:
        return self.stats.snapshot(
            seconds,
            connected_peers=1 if self.connected else 0,
            known_peers=len(self.last_seen),
            position=(self.position[0], self.position[1], self.position[2]),
        )
