"""A transport: every message a peer sends comes straight back to it (no server at all)."""

from __future__ import annotations

import asyncio
from typing import Any


class LoopbackTransport:
    def __init__(self, target: str) -> None:
        self.target = target  # --target; unused here

    async def connect(self, peer: Any) -> LoopbackConnection:
        return LoopbackConnection(peer)


class LoopbackConnection:
    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def send(self, data: bytes) -> None:
        # Never block, never call back from inside send: hand it over on the next loop pass.
        asyncio.get_running_loop().call_soon(self.peer.on_message, data)

    async def close(self) -> None:
        self.peer.connected = False
