"""Plug-ins that break their contracts, one way each, for the registry's tests.

Kept apart from tests/agent/plugin_package (which other tests put on the path of real
runs): these would make every run record collector errors.
"""

from __future__ import annotations

from typing import Any


def not_a_class() -> None:
    """Registered as a measurement type: a function, not a Measurement subclass."""


class NotAnAdapter:
    """Has sniff and parse, but does not derive from perffarm's Adapter."""

    name = "pretender"

    def sniff(self, source: Any) -> bool:
        return False

    def parse(self, source: Any) -> Any:
        raise NotImplementedError


class SyncTransport:
    """``connect`` is a plain method: the worker would await its result and crash."""

    def __init__(self, target: str) -> None:
        self.target = target

    def connect(self, peer: Any) -> None:
        return None


def routine_without_options() -> Any:
    """A routine factory must take the options."""
    return lambda elapsed, delta, peer: None


SAMPLE_RATE = 100  # registered as a collector: not callable


class HalfRelay:
    """Encodes but cannot deliver."""

    def __init__(self, url: str, options: Any) -> None:
        self.url = url

    def encode(self, points: Any) -> tuple[bytes, int]:
        return b"", 0

    async def close(self) -> None:
        return None
