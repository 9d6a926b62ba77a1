"""A real perffarm server for the client's tests, with an approved machine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from perffarm.client import Client
from tests.server.support import ADMIN, ServerProcess


@dataclass(frozen=True)
class Farm:
    url: str
    machine: str
    token: str  # the machine's NAME:SECRET


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    tmp = tmp_path_factory.mktemp("client-farm")
    with ServerProcess(str(tmp / "farm.db"), tmp) as server:
        with Client(server.url, token=ADMIN) as admin:
            made = admin.register_machine("client-lab", "alice")
            admin.approve_machine("client-lab")
        yield Farm(server.url, "client-lab", f"client-lab:{made.secret}")
