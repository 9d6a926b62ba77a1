"""The credentials files: where they are, their format, their permissions, per server."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perffarm.client.credentials import (
    Credentials,
    CredentialsError,
    UserTokens,
    config_dir,
    delete_credentials,
    delete_user_tokens,
    load_credentials,
    load_user_tokens,
    save_credentials,
    save_user_tokens,
)
from perffarm.client.errors import NoCredentials

# A credentials.json exactly as perffarm wrote it before the client package had it.
OLD_MACHINE_FILE = """{
  "default": "http://perf.example.org:8080",
  "servers": {
    "http://127.0.0.1:9000": {
      "server": "http://127.0.0.1:9000",
      "machine": "lab-01",
      "secret": "s3cr3t-a",
      "saved_at": "2026-01-02T03:04:05.678901+00:00"
    },
    "http://perf.example.org:8080": {
      "server": "http://perf.example.org:8080",
      "machine": "lab-02",
      "secret": "s3cr3t-b",
      "saved_at": "2026-02-02T03:04:05.678901+00:00"
    }
  }
}"""
OLD_USER_FILE = """{
  "default": "http://perf.example.org:8080",
  "servers": {
    "http://perf.example.org:8080": {
      "server": "http://perf.example.org:8080",
      "access_token": "pfa_abcdefghijkl_xyz",
      "refresh_token": "pfr_abcdefghijkl_xyz",
      "expires_at": "2026-03-01T10:00:00+00:00",
      "scope": "upload"
    }
  }
}"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_directory_is_the_option_then_the_variable_then_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test fixtures point XDG_CONFIG_HOME into tmp_path: platformdirs follows it.
    assert config_dir() == tmp_path / "xdg-config" / "perffarm"
    monkeypatch.setenv("PERFFARM_CONFIG_DIR", str(tmp_path / "from-env"))
    assert config_dir() == tmp_path / "from-env"
    assert config_dir(tmp_path / "given") == tmp_path / "given"


def test_an_old_machine_file_still_loads_and_keeps_its_entries(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text(OLD_MACHINE_FILE)
    assert load_credentials(tmp_path) == Credentials(
        "http://perf.example.org:8080", "lab-02", "s3cr3t-b"
    )
    assert load_credentials(tmp_path, "127.0.0.1:9000/").token == "lab-01:s3cr3t-a"
    save_credentials(tmp_path, Credentials("http://new:1", "lab-03", "c"))
    data = json.loads((tmp_path / "credentials.json").read_text())
    assert data["default"] == "http://new:1"
    old = json.loads(OLD_MACHINE_FILE)["servers"]["http://127.0.0.1:9000"]
    assert data["servers"]["http://127.0.0.1:9000"] == old


def test_machine_credentials_round_trip_per_server_private(tmp_path: Path) -> None:
    directory = tmp_path / "creds"
    save_credentials(directory, Credentials("http://a:1/", "m1", "s1"))
    path = save_credentials(directory, Credentials("b:2", "m2", "s2"))
    assert path == directory / "credentials.json"
    assert _mode(path) == 0o600 and _mode(directory) == 0o700
    assert load_credentials(directory) == Credentials("http://b:2", "m2", "s2")
    assert load_credentials(directory, "http://a:1").machine == "m1"
    entry = json.loads(path.read_text())["servers"]["http://a:1"]
    assert set(entry) == {"server", "machine", "secret", "saved_at"}

    assert delete_credentials(directory, "http://b:2") is True
    assert delete_credentials(directory, "http://b:2") is False
    assert load_credentials(directory).machine == "m1"  # the default moved to what is left
    assert _mode(path) == 0o600
    delete_credentials(directory, "http://a:1")
    with pytest.raises(NoCredentials, match="perffarm machine register NAME --server URL"):
        load_credentials(directory)


def test_a_file_made_readable_by_others_is_rewritten_private(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(OLD_MACHINE_FILE)
    path.chmod(0o644)
    save_credentials(tmp_path, Credentials("http://x:1", "m", "s"))
    assert _mode(path) == 0o600
    assert not list(tmp_path.glob(".credentials-*"))  # no temporary file left behind


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"servers": []}',
        '{"default": "http://x:1", "servers": {"http://x:1": {}}}',
    ],
)
def test_a_broken_file_is_named_with_what_to_do(tmp_path: Path, text: str) -> None:
    (tmp_path / "credentials.json").write_text(text)
    with pytest.raises((CredentialsError, NoCredentials)) as failure:
        load_credentials(tmp_path)
    message = str(failure.value)
    assert "\n" not in message and "credentials.json" in message
    assert "perffarm machine register" in message


def test_user_tokens_round_trip_and_an_old_file_loads(tmp_path: Path) -> None:
    (tmp_path / "user-credentials.json").write_text(OLD_USER_FILE)
    old = load_user_tokens(tmp_path, None)
    assert old is not None and old.scope == "upload"
    assert old.expires_at == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert load_user_tokens(tmp_path, "http://elsewhere:1") is None

    mine = UserTokens("http://farm:8080", "pfa_x", None, datetime.now(UTC) + timedelta(hours=1), "")
    path = save_user_tokens(tmp_path, mine)
    assert _mode(path) == 0o600
    assert load_user_tokens(tmp_path, None) == mine
    assert load_user_tokens(tmp_path, "http://perf.example.org:8080") == old
    assert delete_user_tokens(tmp_path, "http://farm:8080")
    assert load_user_tokens(tmp_path, None) == old


def test_a_broken_user_entry_says_to_sign_in_again(tmp_path: Path) -> None:
    (tmp_path / "user-credentials.json").write_text(
        '{"default": "http://x:1", "servers": {"http://x:1": {"server": "http://x:1"}}}'
    )
    with pytest.raises(CredentialsError, match="perffarm login"):
        load_user_tokens(tmp_path, None)
