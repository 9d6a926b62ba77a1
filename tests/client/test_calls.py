"""Every typed call of perffarm.client against a real server, sync and async alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from perffarm.client import AsyncClient, Client, NotFound
from perffarm.model.api import Outcome
from tests.client.conftest import Farm
from tests.server.support import ADMIN, make_run

KINDS = ["sync", "async"]


def calls(kind: str, server: str, token: str, *steps: tuple[str, tuple[Any, ...]]) -> list[Any]:
    """The answers of ``client.NAME(*args)`` for each step, through one client."""
    if kind == "sync":
        with Client(server, token=token) as client:
            return [
                list(client.machines()) if name == "machines" else getattr(client, name)(*args)
                for name, args in steps
            ]

    async def main() -> list[Any]:
        async with AsyncClient(server, token=token) as client:
            answers = []
            for name, args in steps:
                if name == "machines":
                    answers.append([m async for m in client.machines()])
                else:
                    answers.append(await getattr(client, name)(*args))
            return answers

    return asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_runs_one_by_one_and_in_batches(kind: str, farm: Farm) -> None:
    project = f"calls-{kind}"
    one, two, three = (make_run(machine=farm.machine, project=project, hour=h) for h in range(3))
    first, again, batch, document = calls(
        kind, farm.url, farm.token,
        ("submit_run", (one,)),
        ("submit_run", (one.to_json(),)),
        ("submit_runs", ([two.to_json(), three.to_json(), two.to_json()],)),
        ("run", (str(three.id),)),
    )  # fmt: skip
    assert (first.outcome, first.machine, first.machine_approved) == (
        Outcome.STORED, farm.machine, True,
    )  # fmt: skip
    assert again.outcome == Outcome.ALREADY_STORED
    assert [o.outcome for o in batch.outcomes] == [
        Outcome.STORED, Outcome.STORED, Outcome.ALREADY_STORED,
    ]  # fmt: skip
    assert document.id == three.id and document.results == three.results


@pytest.mark.parametrize("kind", KINDS)
def test_machines(kind: str, farm: Farm) -> None:
    me, listed = calls(
        kind, farm.url, ADMIN, ("approve_machine", (farm.machine,)), ("machines", ())
    )
    assert me.approved and me.name == farm.machine
    assert farm.machine in [m.name for m in listed]


@pytest.mark.parametrize("kind", KINDS)
def test_baseline_runs_for_check_against_a_server(kind: str, farm: Farm) -> None:
    project = f"baseline-{kind}"
    runs = [make_run(machine=farm.machine, project=project, hour=h) for h in range(4)]
    with Client(farm.url, token=farm.token) as client:
        for run in runs:
            client.submit_run(run)
    params = {
        "project": project,
        "branch": "main",
        "mode": "before",
        "commit": runs[3].source.commit or "",
        "commit_time": runs[3].source.commit_time.isoformat() if runs[3].source.commit_time else "",
        "machine": farm.machine,
        "limit": "2",
    }
    ids, documents, nothing = calls(
        kind, farm.url, "",
        ("baseline", (params,)),
        ("baseline_runs", (params,)),
        ("baseline_runs", ({**params, "project": "nothing-here"},)),
    )  # fmt: skip
    assert ids == [str(runs[2].id), str(runs[1].id)]
    assert [d.id for d in documents] == [runs[2].id, runs[1].id]
    assert nothing == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_load_test_from_creation_to_summary(kind: str, farm: Farm) -> None:
    test_id = f"calls-{kind}"
    batch = {
        "worker": "w",
        "incarnation": "i",
        "sequence": 0,
        "datapoints": [{"peerId": f"p{k}", "metrics": {"sent": k}} for k in range(10)],
    }
    (created, waiting, started, running, ack, again, finished, summary) = calls(
        kind, farm.url, farm.token,
        ("create_loadtest", ({"id": test_id},)),
        ("loadtest_state", (test_id,)),
        ("start_loadtest", (test_id,)),
        ("loadtest_state", (test_id,)),
        ("send_datapoints", (test_id, batch)),
        ("send_datapoints", (test_id, batch)),
        ("finish_loadtest", (test_id,)),
        ("loadtest_summary", (test_id,)),
    )  # fmt: skip
    assert created["id"] == test_id
    assert (waiting.started, waiting.finished) == (False, False)
    assert started["id"] == test_id and running.started
    assert (ack.accepted, ack.duplicate) == (10, False)
    assert (again.accepted, again.duplicate) == (0, True)
    assert finished["summary"] == summary and summary["metrics"]["sent"]["sum"] == 45
    with pytest.raises(NotFound, match="looking up load test 'no-such-test'"):
        calls(kind, farm.url, "", ("loadtest_state", ("no-such-test",)))
