"""A third party's plug-ins, one in every group, load and work exactly like the built-ins.

tests/agent/plugin_package is a real distribution (``perffarm-test-plugins``): on the path,
its entry points are read like perffarm's own, by the same registry, and each plug-in is
then used by the same code that uses the built-ins.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from perffarm import plugins
from perffarm.adapters.registry import adapter_names, parse_text
from perffarm.agent.collectors import collect_environment
from perffarm.agent.config import load_suite
from perffarm.agent.store import LocalStore
from perffarm.console import UsageError
from perffarm.loadtest import routines, transports
from perffarm.loadtest.peer import Peer
from perffarm.loadtest.relays import Relays
from perffarm.server.services.notifiers import Notifiers
from tests.plugins.support import THIRD_PARTY, install, subprocess_env

THEIRS = {
    "measurements": "checksum",
    "collectors": "rack",
    "adapters": "queuebench",
    "transports": "loopback",
    "routines": "chatter",
    "relays": "jsonlines",
    "notifiers": "alert-log",
}
DOCS = Path(__file__).parents[2] / "docs" / "plugins.md"


@pytest.fixture
def third_party(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, THIRD_PARTY)


def test_the_package_has_a_plug_in_in_every_group() -> None:
    assert set(THEIRS) == set(plugins.GROUPS)


@pytest.mark.usefixtures("third_party")
@pytest.mark.parametrize("group", list(plugins.GROUPS))
def test_a_third_party_plug_in_is_listed_loaded_and_checked_like_a_built_in(group: str) -> None:
    name = THEIRS[group]
    assert name in plugins.names(group)
    (registration,) = [p for p in plugins.listing(group) if p.name == name]
    assert (registration.distribution, registration.version) == ("perffarm-test-plugins", "1.0")
    plugin = plugins.load(group, name)
    assert plugins.GROUPS[group].problem(plugin) is None
    assert plugins.load(group, name) is plugin
    # The built-ins are still there, beside it.
    assert len(plugins.names(group)) >= 2


def test_without_the_package_its_names_are_unknown() -> None:
    for group, name in THEIRS.items():
        assert name not in plugins.names(group)


def test_perffarm_run_measures_with_the_third_party_measurement_type(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: demo\nrepeat: 3\nwarmup: 0\nmeasurements:\n"
        "  - name: hash\n    type: checksum\n    megabytes: 1\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "run", str(suite), "--json"],
        env={**subprocess_env(THIRD_PARTY), "PERFFARM_STORE": str(tmp_path / "store.db")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with LocalStore(tmp_path / "store.db") as store:
        (row,) = store.list_runs()
        run = store.load(row.id)
    (result,) = run.results
    assert (result.metric, result.params, len(result.samples)) == (
        "sha256_time", {"megabytes": 1}, 3,
    )  # fmt: skip


@pytest.mark.usefixtures("third_party")
def test_a_suite_refuses_an_unknown_key_of_the_third_party_options(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: demo\nmeasurements:\n  - name: hash\n    type: checksum\n    megabyte: 1\n"
    )
    with pytest.raises(UsageError, match=r"suite.yaml:5: .*megabyte.*did you mean 'megabytes'"):
        load_suite(suite)
    suite.write_text("project: demo\nmeasurements:\n  - name: hash\n    type: checksum\n")
    (planned,) = load_suite(suite).measurements
    assert planned.cls is plugins.load("measurements", "checksum")


@pytest.mark.usefixtures("third_party")
def test_the_third_party_collector_fills_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rack = tmp_path / "rack"
    rack.write_text("R12-U07\n")
    monkeypatch.setenv("LAB_RACK_FILE", str(rack))
    environment = collect_environment(tmp_path)
    assert environment.sections["rack"] == {"rack": "R12-U07"}
    assert "rack" not in environment.errors and "cpu" in environment.sections


@pytest.mark.usefixtures("third_party")
def test_the_third_party_adapter_is_detected_and_listed(capsys: pytest.CaptureFixture) -> None:
    text = "queuebench 2.1\nsend: 10500 msg/s\nreceive: 9800.5 msg/s\n"
    parsed = parse_text("auto", text)
    assert [(r.benchmark, r.samples) for r in parsed.results] == [
        ("send", [10500.0]), ("receive", [9800.5]),
    ]  # fmt: skip
    assert "queuebench" in adapter_names()
    from perffarm.commands import main

    assert main(["formats", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["queuebench"]["description"] == "queuebench text output (NAME: N msg/s)"
    assert rows["queuebench"]["error"] is None


@pytest.mark.usefixtures("third_party")
def test_the_third_party_transport_and_routine_drive_peers() -> None:
    async def main() -> list[Peer]:
        make = routines.load("chatter")
        transport = transports.load("loopback")("unused://")
        peers = []
        for index in range(3):
            peer = Peer(f"p{index}", "l", "r", make({"every": 0.05}), [])
            peer.connection = await transport.connect(peer)
            peer.connected = True
            peers.append(peer)
        started = time.monotonic()
        while time.monotonic() - started < 0.5:
            await asyncio.sleep(1 / 60)
            for peer in peers:
                peer.step(time.monotonic() - started, 1 / 60, peer)
        await asyncio.sleep(0.05)
        for peer in peers:
            await peer.connection.close()
        return peers

    for peer in asyncio.run(main()):
        assert not peer.connected
        assert peer.stats.received_counter.total + peer.stats.received_counter.count >= 5


@pytest.mark.usefixtures("third_party")
def test_the_third_party_relay_gets_the_datapoints_ingest_offers(tmp_path: Path) -> None:
    out = tmp_path / "points.jsonl"
    chunk = json.dumps(
        [{"peerId": f"b{i}", "timestamp": 1_700_000_000_000 + i, "metrics": {"sent": i}}
         for i in range(3)]
    ).encode()  # fmt: skip

    async def main() -> dict[str, int]:
        relays = Relays(f"file://{out}", relay="jsonlines", flush_seconds=0.05)
        await relays.start()
        relays.offer("t1", [{"peerId": "a", "timestamp": 5, "metrics": {"sent": 1}}])
        relays.offer_chunk("t1", "worker/1", chunk, 3)
        await asyncio.sleep(0.3)
        await relays.stop()
        return relays.counters

    counters = asyncio.run(main())
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"test": "t1", "peer": "a", "time": 5, "sent": 1}
    assert [line["peer"] for line in lines] == ["a", "b0", "b1", "b2"]
    assert counters == {"relay_sent_lines": 4, "relay_dropped_lines": 0, "relay_errors": 0}


@pytest.mark.usefixtures("third_party")
def test_a_relay_that_fails_costs_counted_datapoints_never_the_sender(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[dict[str, int], bool]:
        relays = Relays(f"file://{tmp_path}/missing/points.jsonl", relay="jsonlines")
        relays.flush_seconds = 0.05
        await relays.start()
        relays.offer("t1", [{"peerId": "a", "timestamp": 5, "metrics": {"sent": 1}}] * 2)
        await asyncio.sleep(0.3)
        relays.offer_chunk("t1", "worker/1", b"[{not json", 3)  # read in the encoding thread
        await asyncio.sleep(0.3)
        alive = relays._task is not None and not relays._task.done()
        await relays.stop()
        return relays.counters, alive

    counters, alive = asyncio.run(main())
    assert alive
    assert counters == {"relay_sent_lines": 0, "relay_dropped_lines": 5, "relay_errors": 2}
    assert "load-test relay jsonlines: dropped 2 records: FileNotFoundError: " in caplog.text


@pytest.mark.usefixtures("third_party")
def test_every_installed_notifier_hears_of_new_alert_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "alerts.log"
    monkeypatch.setenv("ALERT_LOG", str(log))
    notifiers = Notifiers(lambda: None)  # no webhook URL: the webhook posts nothing
    assert set(notifiers.members) == {"webhook", "alert-log"}
    notifiers.start()
    group = {"project": "api", "branch": "main", "regressions": 2, "improvements": 0,
             "commit_before": None, "commit_after": None, "alerts": [], "id": 7}  # fmt: skip
    notifiers.notify([group])
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    notifiers.stop()
    assert log.read_text() == "api main: 2 regression(s), 0 improvement(s)\n"
    assert (notifiers.sent, notifiers.failed) == (0, 0)


def test_a_notifier_that_cannot_be_loaded_is_logged_and_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.plugins.support import BROKEN

    install(monkeypatch, BROKEN)
    notifiers = Notifiers(lambda: None)
    assert set(notifiers.members) == {"webhook"}
    assert "notifier 'exits' from perffarm-broken-plugins 0.1" in caplog.text
    assert "SystemExit: 3; alerts are not sent through it" in caplog.text


@pytest.mark.slow
def test_a_worker_runs_on_the_third_party_transport_and_routine(tmp_path: Path) -> None:
    """The real worker command, its transport and routine named on the command line."""
    from tests.loadtest.conftest import TOKEN, LoadTestServer, cli

    server = LoadTestServer(tmp_path, str(tmp_path / "lt.db")).start()
    auth = {"X-Perffarm-Loadtest-Token": TOKEN}
    try:
        api = f"{server.url}/api/v1/loadtests"
        httpx.post(api, json={"id": "t-theirs"}, headers=auth).raise_for_status()
        httpx.post(f"{api}/t-theirs/start", headers=auth).raise_for_status()
        misspelt = subprocess.run(
            cli("worker", "--server", server.url, "--test-id", "t-theirs", "--token", TOKEN,
                "--target", "loop://", "--transport", "loopbak", "--name", "typo"),
            env=subprocess_env(THIRD_PARTY), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert misspelt.returncode == 2, misspelt.stderr
        (line,) = misspelt.stderr.strip().splitlines()
        assert line == (
            "error: unknown transport 'loopbak'; did you mean 'loopback'? "
            "(installed: loopback, sink, websocket, websockets, websockets-sansio)"
        )
        worker = subprocess.Popen(
            cli("worker", "--server", server.url, "--test-id", "t-theirs", "--peers", "4",
                "--duration", "3", "--target", "loop://", "--transport", "loopback",
                "--routine", "chatter", "--token", TOKEN, "--name", "theirs"),
            env=subprocess_env(THIRD_PARTY),
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        summary = httpx.post(f"{api}/t-theirs/finish", headers=auth, timeout=60).json()["summary"]
        sent = summary["metrics"]["sent"]["sum"]
        assert sent >= 4 * 2  # each peer chats once a second for 3 s
        assert summary["metrics"]["received"]["sum"] == sent  # the loopback hands all back
    finally:
        server.stop()


def test_the_docs_examples_are_the_tested_package(third_party: None) -> None:
    """Each Python example of docs/plugins.md is code of the package these tests use."""
    sources = "\n".join(
        path.read_text() for path in (THIRD_PARTY / "perffarm_test_plugins").glob("*.py")
    )
    entry_points = (
        THIRD_PARTY / "perffarm_test_plugins-1.0.dist-info" / "entry_points.txt"
    ).read_text()
    text = DOCS.read_text()
    examples = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(examples) >= len(plugins.GROUPS)
    for example in examples:
        assert example.strip() in sources, example[:200]
    for group, name in THEIRS.items():
        assert f"## {group.capitalize()}" in text or f"## {group}" in text.lower()
        assert f'[project.entry-points."perffarm.{group}"]' in text
        (value,) = re.findall(rf"^{re.escape(name)} = (\S+)$", entry_points, flags=re.M)
        assert value.replace("perffarm_test_plugins", "") in text.replace("yourpackage", "")
