"""Network interfaces: state, link speed, MTU and addresses."""

from __future__ import annotations

import socket
from typing import Any

import psutil

from perffarm.agent.collectors.base import CollectorContext


def collect(context: CollectorContext) -> dict[str, Any]:
    stats = psutil.net_if_stats()
    addresses = psutil.net_if_addrs()
    interfaces: dict[str, dict[str, Any]] = {}
    for name in sorted(set(stats) | set(addresses)):
        stat = stats.get(name)
        ipv4: list[str] = []
        ipv6: list[str] = []
        mac: str | None = None
        for address in addresses.get(name, []):
            if address.family == socket.AF_INET:
                ipv4.append(address.address)
            elif address.family == socket.AF_INET6:
                # The %scope suffix repeats the interface name.
                ipv6.append(address.address.split("%", 1)[0])
            elif address.family == psutil.AF_LINK:
                mac = address.address
        interfaces[name] = {
            "up": stat.isup if stat else None,
            # psutil says 0 when the driver does not know (virtual NICs, loopback).
            "speed_mbps": stat.speed or None if stat else None,
            "mtu": stat.mtu if stat else None,
            "loopback": "loopback" in stat.flags.split(",") if stat else None,
            "ipv4": ipv4,
            "ipv6": ipv6,
            "mac": mac,
        }
    return {"interfaces": interfaces}
