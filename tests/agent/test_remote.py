"""The `remote-command` measurement against a real SSH server (asyncssh) started by the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

from perffarm.agent.config import load_suite
from perffarm.agent.remote import RemoteError, SSHPool, SSHTarget
from perffarm.agent.runner import RunSettings, run_suite
from perffarm.agent.store import LocalStore

USER = "bench"
PASSWORD = "correct horse battery"


@dataclass
class SSHServer:
    port: int
    host_key: asyncssh.SSHKey
    connections: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def known_hosts_line(self) -> str:
        key = self.host_key.export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {key}\n"


@pytest.fixture
def ssh_server() -> Iterator[SSHServer]:
    """A password-protected SSH server on a free port; commands run with the local shell,
    SFTP serves the local file system."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    state = SSHServer(port=0, host_key=host_key)

    class Server(asyncssh.SSHServer):
        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            state.connections.append(str(conn.get_extra_info("peername")))

        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == USER and password == PASSWORD

    async def run_command(process: asyncssh.SSHServerProcess) -> None:
        state.commands.append(process.command)
        child = await asyncio.create_subprocess_shell(
            process.command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await child.communicate()
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(child.returncode)

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            Server,
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            process_factory=run_command,
            sftp_factory=True,
            encoding=None,
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    state.port = acceptor.sockets[0].getsockname()[1]
    try:
        yield state
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def write_suite(tmp_path: Path, server: SSHServer, password_placeholder: str, **extra: str) -> Path:
    (tmp_path / "known_hosts").write_text(server.known_hosts_line())
    (tmp_path / "secure.yaml").write_text(f"vm_password: {PASSWORD}\nwrong: not-the-password\n")
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    lines = [
        "project: remote",
        "repeat: 3",
        "warmup: 1",
        "sampler: {enabled: false}",
        "measurements:",
        "  - name: vm",
        "    type: remote-command",
        "    host: 127.0.0.1",
        f"    port: {server.port}",
        f"    user: {USER}",
        f"    password: '{password_placeholder}'",
        "    known_hosts: known_hosts",
        f"    command: 'echo run >> {remote_dir}/log; echo hello; echo warn >&2'",
        f"    collect: ['{remote_dir}/log']",
        *(f"    {key}: {value}" for key, value in extra.items()),
    ]
    suite = tmp_path / "remote.yaml"
    suite.write_text("\n".join(lines) + "\n")
    return suite


def test_a_remote_command_is_timed_over_one_connection_and_its_file_collected(
    tmp_path, ssh_server, store_path
):
    suite = load_suite(write_suite(tmp_path, ssh_server, "{{ secure.vm_password }}"))
    with LocalStore(store_path) as store:
        run = run_suite(suite, store, settings=RunSettings())
    assert run.status == "ok", run.error
    wall = next(r for r in run.results if r.metric == "wall_time")
    assert len(wall.samples) == 3 and all(s > 0 for s in wall.samples)
    assert wall.extra["exit_statuses"] == [0, 0, 0]
    # Four commands (one warm-up) over a single SSH connection.
    assert len(ssh_server.commands) == 4
    assert len(ssh_server.connections) == 1
    attachments = {a.name: a.data() for a in run.attachments}
    assert attachments["vm.log"] == b"run\n" * 4
    assert attachments["vm.last.stdout.txt"] == b"hello\n"
    assert attachments["vm.last.stderr.txt"] == b"warn\n"
    assert run.environment.sections["remote"]["vm"]["server_version"].startswith("SSH-2.0-")
    assert PASSWORD not in run.to_json()


def test_a_wrong_password_fails_the_measurement_clearly(tmp_path, ssh_server, store_path):
    suite = load_suite(write_suite(tmp_path, ssh_server, "{{ secure.wrong }}"))
    with LocalStore(store_path) as store:
        run = run_suite(suite, store, settings=RunSettings())
    assert run.status == "failed"
    record = run.measurements[0]
    assert record.status == "failed"
    assert record.error == (
        f"setup failed: RemoteError: cannot log in to {USER}@127.0.0.1:{ssh_server.port}: "
        "the server refused the credentials (check user, password or client_keys)"
    )
    assert "not-the-password" not in run.to_json()
    assert ssh_server.commands == []


def test_a_failing_remote_command_keeps_its_output(tmp_path, ssh_server, store_path):
    path = write_suite(tmp_path, ssh_server, "{{ secure.vm_password }}")
    path.write_text(
        path.read_text().replace("echo hello; echo warn >&2", "echo broken >&2; exit 7")
    )
    with LocalStore(store_path) as store:
        run = run_suite(load_suite(path), store, settings=RunSettings())
    assert run.status == "failed"
    assert "exited with status 7 (repetition 1" in run.measurements[0].error
    assert {a.name: a.data() for a in run.attachments}["vm.failed.stderr.txt"] == b"broken\n"


def test_an_unknown_host_key_is_refused_unless_known_hosts_is_null(tmp_path, ssh_server):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{ssh_server.port} {other}\n")
    target = SSHTarget(
        "127.0.0.1", ssh_server.port, USER, password=PASSWORD, known_hosts=str(known)
    )
    with SSHPool() as pool, pytest.raises(RemoteError, match=r"host key of .* is not trusted"):
        pool.connect(target)
    trusting = SSHTarget("127.0.0.1", ssh_server.port, USER, password=PASSWORD, known_hosts=None)
    with SSHPool() as pool:
        assert pool.run(trusting, "echo $((6 * 7))").stdout == b"42\n"
        assert pool.run(trusting, "exit 3").exit_status == 3
        with pytest.raises(RemoteError, match="no such file on the remote host"):
            pool.fetch(trusting, str(tmp_path / "missing.txt"))
        assert pool.connections_opened == 1


def test_a_refused_connection_is_one_line(tmp_path):
    from tests.support import free_port

    port = free_port()
    with (
        SSHPool() as pool,
        pytest.raises(RemoteError, match=rf"cannot connect to 127.0.0.1:{port}"),
    ):
        pool.connect(SSHTarget("127.0.0.1", port, password="x", known_hosts=None))


def test_remote_options_are_checked_when_the_suite_loads(tmp_path):
    from perffarm.console import UsageError

    (tmp_path / "secure.yaml").write_text("pw: x\n")
    suite = tmp_path / "s.yaml"
    base = (
        "project: p\nmeasurements:\n  - name: vm\n    type: remote-command\n"
        "    host: vm.example.org\n    command: uptime\n    password: '{{ secure.pw }}'\n"
    )
    suite.write_text(base + "    known_hosts: null\n    collect: /var/log/bench.log\n")
    options = load_suite(suite).measurements[0].options
    assert options.known_hosts is None and options.collect == ["/var/log/bench.log"]
    assert options.port == 22
    suite.write_text(base + "    port: 70000\n")
    with pytest.raises(UsageError, match=r"s\.yaml:8: measurements\[0\]\.port"):
        load_suite(suite)
    suite.write_text(base.replace("secure.pw", "secure.nope"))
    with pytest.raises(UsageError, match=r"secure\.nope \}\} is not defined in secure\.yaml"):
        load_suite(suite)
