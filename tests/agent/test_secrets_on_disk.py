"""Issue 16, case 7: no secret in clear in anything the agent writes, and all of it private.

The real `perffarm agent` builds a branch of a real git repository and runs a suite whose
build steps and commands print the suite's secrets (from ``secure.yaml`` through
placeholders, through the environment), then uploads to a real `perffarm server` on a free
port. Afterwards every file under the agent's directories (store, pending uploads, builds
and their logs, its log, credentials, its temporary folder) and the server's database files
is read: none holds a secret in clear, in JSON or in base64, and every one is private.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from perffarm.redact import secret_values
from perffarm.yamlfile import load_yaml, plain
from tests.agent.test_farm_run import git

PASSWORD = "s3cr3t-Pass"
API_TOKEN = "tok-8f3a9c2e71d4b605"
PRIVATE_KEY = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"
SECURE_YAML = f"""\
databases:
  remote: {{host: 127.0.0.1, port: 22, user: spice, password: {PASSWORD}}}
api:
  token: {API_TOKEN}
private_key: |
{"".join(f"  {line}{chr(10)}" for line in PRIVATE_KEY.splitlines())}"""
SECRETS = [API_TOKEN, PASSWORD, PRIVATE_KEY + "\n"]


def _suite(builds: Path) -> str:
    password = "{{ secure.databases.remote.password }}"
    token = "{{ secure.api.token }}"
    return "\n".join(
        [
            "project: leak",
            "machine: lab-01",
            "repeat: 2",
            "warmup: 0",
            "sampler: {enabled: false}",
            "build:",
            "  repository: upstream.git",
            "  branches: [main]",
            f"  work_dir: {builds}",
            f'  env: {{TOKEN: "{token}"}}',
            "  steps:",
            "    - name: compile",
            f"      run: 'echo building with $TOKEN; echo {password} >&2;"
            " sh build.sh {{ build.prefix }}'",
            "measurements:",
            "  - name: echo-secrets",
            "    type: command",
            f"    command: 'echo password={password} token=$API_TOKEN env=$FROM_ENV;"
            ' printf "%s" "$KEY" >&2\'',
            "    env:",
            f'      API_TOKEN: "{token}"',
            '      FROM_ENV: "{{ env.LEAK_PASSWORD }}"',
            '      KEY: "{{ secure.private_key }}"',
            "  - name: run-folder",
            "    type: command",
            """    command: 'find "$TMPDIR" -printf "%m %y %p\\n"'""",
            "  - name: failing",
            "    type: command",
            f"    command: 'echo {token}; echo $LEAK_PASSWORD >&2; exit 3'",
            "",
        ]
    )


def _forms(secret: str) -> list[bytes]:
    """How a secret would show in a file: as is, inside JSON, and in base64 at each of
    the three alignments (only the characters that depend on the secret alone)."""
    raw = secret.encode()
    forms = [raw, json.dumps(secret)[1:-1].encode()]
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        start = (0, 2, 3)[pad]
        forms.append(encoded[start : 4 * ((len(raw) + pad) // 3)])
    return forms


def _perffarm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perffarm.commands", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _walk(root: Path) -> list[Path]:
    return [root, *sorted(root.rglob("*"))]


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "build.sh").write_text('#!/bin/sh\nmkdir -p "$1/bin"\necho built > "$1/bin/tool"\n')
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    git("clone", "-q", "--bare", str(work), str(tmp_path / "upstream.git"), cwd=tmp_path)
    return tmp_path / "upstream.git"


def test_nothing_the_agent_writes_holds_a_secret_and_all_of_it_is_private(
    tmp_path: Path, upstream: Path
) -> None:
    from perffarm.commands import main
    from tests.server.support import ADMIN, ServerProcess

    (tmp_path / "secure.yaml").write_text(SECURE_YAML)
    # The values the test looks for are the ones secure.yaml's rule calls secrets.
    secure = plain(load_yaml(tmp_path / "secure.yaml"))
    assert sorted(secret_values(secure)) == sorted(SECRETS)

    # The agent's directories, all made by perffarm itself, but for $TMPDIR, which must exist.
    agent = tmp_path / "agent"
    agent.mkdir(mode=0o700)
    temporary = agent / "tmp"
    temporary.mkdir(mode=0o700)
    store, creds = agent / "data" / "store.db", agent / "config"
    log = agent / "log" / "agent.log"
    suite = tmp_path / "farm.yaml"
    suite.write_text(_suite(agent / "builds"))
    env = {
        **os.environ,
        "PERFFARM_STORE": str(store),
        "PERFFARM_CONFIG_DIR": str(creds),
        "TMPDIR": str(temporary),
        "LEAK_PASSWORD": PASSWORD,
    }

    server_dir = tmp_path / "server"
    server_dir.mkdir()
    with ServerProcess(str(server_dir / "farm.db"), server_dir) as server:
        registered = _perffarm(
            "machine", "register", "lab-01", "--server", server.url, "--owner", "me", env=env
        )
        assert registered.returncode == 0, registered.stderr
        approve = ["machine", "approve", "lab-01", "--server", server.url, "--admin-token", ADMIN]
        assert main(approve) == 0

        done = _perffarm(
            "agent", str(suite), "--once", "--no-probe", "--log-file", str(log), env=env
        )
        # The `failing` measurement fails the run: --once says so with exit code 1.
        assert done.returncode == 1, done.stderr
        assert "uploaded to" in log.read_text() and "1 stored" in log.read_text()
        runs = httpx.get(
            f"{server.url}/api/v1/runs", headers={"Authorization": f"Bearer {ADMIN}"}
        ).json()["items"]
        (summary,) = runs
        uploaded = httpx.get(
            f"{server.url}/api/v1/runs/{summary['id']}",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr

    # The secrets were printed, and hidden where they were printed.
    attachments = {
        item["name"]: base64.b64decode(item["content"]).decode() for item in uploaded["attachments"]
    }
    assert "building with ***\n***\n" in attachments["build/01-compile.log"]
    assert attachments["echo-secrets.last.stdout.txt"] == "password=*** token=*** env=***\n"
    assert attachments["echo-secrets.last.stderr.txt"] == "***"
    assert attachments["failing.failed.stdout.txt"] == "***\n"
    assert attachments["failing.failed.stderr.txt"] == "***\n"

    # While a command ran, the run's folder and the command's output files were private.
    during = attachments["run-folder.last.stdout.txt"].splitlines()
    assert any("/perffarm-run-" in line and "/stdout" in line for line in during), during
    assert [line for line in during if line.split()[:2] not in (["700", "d"], ["600", "f"])] == []

    machine_secret = json.loads((creds / "credentials.json").read_text())
    machine_secret = next(iter(machine_secret["servers"].values()))["secret"]
    written = _walk(agent)
    assert store in written and log in written and creds / "credentials.json" in written
    assert any(path.name == "01-compile.log" for path in written)
    assert not list(temporary.iterdir()), "the run's temporary folder is removed"
    server_files = sorted(server_dir.glob("farm.db*"))
    assert server_files
    # Nothing was written beside what the test made (the default store, config and log
    # folders were not used).
    made = {"agent", "farm.yaml", "secure.yaml", "server", "upstream.git", "work"}
    assert {path.name for path in tmp_path.iterdir()} == made

    leaks = [
        (str(path), secret[:8])
        for path in [*written, *server_files]
        if path.is_file()
        for secret in SECRETS
        if any(form in path.read_bytes() for form in _forms(secret))
    ]
    assert leaks == []
    # The machine's secret is in its credentials file, where it must be, and nowhere else.
    holders = [
        path
        for path in written
        if path.is_file() and any(f in path.read_bytes() for f in _forms(machine_secret))
    ]
    assert holders == [creds / "credentials.json"]

    shared = [
        f"{stat.filemode(path.lstat().st_mode)} {path}"
        for path in [*written, *server_files]
        if stat.S_IMODE(path.lstat().st_mode) & 0o077
        or (path.is_dir() and stat.S_IMODE(path.lstat().st_mode) != 0o700)
    ]
    assert not shared, "\n".join(shared)
