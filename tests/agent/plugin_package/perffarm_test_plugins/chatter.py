"""A routine: stand still and send one chat message every ``every`` seconds."""

from __future__ import annotations

from typing import Any

from perffarm.loadtest.routines import CHAT, SIZES, Step


def chatter(options: dict[str, Any] | None = None) -> Step:
    every = float((options or {}).get("every", 1.0))
    due = 0.0

    def step(elapsed: float, delta: float, peer: Any) -> None:
        nonlocal due
        if elapsed >= due:
            peer.send(CHAT, SIZES[CHAT])
            due = elapsed + every

    return step
