"""A relay: every datapoint as one JSON line, appended to the file the URL names."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from perffarm.loadtest.relays import RelayPoint


class JsonLinesRelay:
    def __init__(self, url: str, options: Mapping[str, str]) -> None:
        self.path = Path(urlsplit(url).path)  # file:///var/lib/loadtests/points.jsonl

    def encode(self, points: Iterable[RelayPoint]) -> tuple[bytes, int]:
        # Called in a worker thread: the CPU work goes here, off the server's event loop.
        lines = [
            json.dumps({"test": p.test_id, "peer": p.peer_id, "time": p.timestamp_ms, **p.metrics})
            for p in points
        ]
        return "".join(line + "\n" for line in lines).encode(), len(lines)

    async def deliver(self, body: bytes) -> None:
        await asyncio.to_thread(self._append, body)  # raise on failure: counted as dropped

    def _append(self, body: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(body)

    async def close(self) -> None:
        return None
