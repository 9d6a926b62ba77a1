"""Routines: what a simulated peer does on every tick (about 60 times a second).

A routine is a factory ``make(options: dict) -> step`` registered in the entry-point group
``perffarm.routines`` and loaded through the plug-in registry (``perffarm.plugins``, group
``ROUTINES``); ``step(elapsed, delta, peer)`` is called every tick with the seconds since
the test started and since the last tick. The built-ins are registered in
``pyproject.toml`` exactly as a third party's routine would be.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Protocol, cast

from perffarm import plugins


class PeerLike(Protocol):
    position: list[float]

    def send(self, kind: int, size: int) -> None: ...


Step = Callable[[float, float, Any], None]


class Routine(Protocol):
    """The contract of the ``perffarm.routines`` group (declared in ``perffarm.plugins``).

    Called once per peer with the routine's options (None: the defaults); answers the
    step function that peer calls on every tick as ``step(elapsed, delta, peer)``: seconds
    since the test started, seconds since the previous tick, and the peer (its
    ``position`` list and ``send(kind, size)``). A step must be quick: a thousand peers
    share one event loop and 16 ms per tick.
    """

    def __call__(self, options: dict[str, Any] | None = None, /) -> Step: ...


#: Message kinds, their sizes in bytes and how long they stay useful (seconds).
POSITION, PROFILE, CHAT = 1, 2, 3
SIZES = {POSITION: 48, PROFILE: 256, CHAT: 128}
EXPIRY = {POSITION: 1.0, PROFILE: 5.0, CHAT: 30.0}


def default(options: dict[str, Any] | None = None) -> Step:
    """Walk around; position every 100 ms, profile every 1 s, chat every 10 s."""
    options = options or {}
    position_every = float(options.get("position_every", 0.1))
    profile_every = float(options.get("profile_every", 1.0))
    chat_every = float(options.get("chat_every", 10.0))
    speed = float(options.get("speed", 2.0))
    # Peers start at random phases so that a thousand of them do not send on the same tick.
    rng = random.Random()
    due = {
        POSITION: rng.uniform(0, position_every),
        PROFILE: rng.uniform(0, profile_every),
        CHAT: rng.uniform(0, chat_every),
    }
    every = {POSITION: position_every, PROFILE: profile_every, CHAT: chat_every}
    heading = rng.uniform(0, 2 * math.pi)

    def step(elapsed: float, delta: float, peer: PeerLike) -> None:
        nonlocal heading
        heading += rng.uniform(-0.3, 0.3) * delta
        peer.position[0] += math.cos(heading) * speed * delta
        peer.position[2] += math.sin(heading) * speed * delta
        for kind, when in due.items():
            if elapsed >= when:
                peer.send(kind, SIZES[kind])
                # Catch up at most one period: a late tick must not cause a burst.
                due[kind] = max(when + every[kind], elapsed)

    return step


def idle(options: dict[str, Any] | None = None) -> Step:
    """Connect and listen, send nothing: receivers for a one-way test."""

    def step(elapsed: float, delta: float, peer: PeerLike) -> None:
        return None

    return step


def load(name: str) -> Routine:
    """The routine registered as ``name`` (``PluginError`` when unknown or broken)."""
    return cast(Routine, plugins.load(plugins.ROUTINES, name))
