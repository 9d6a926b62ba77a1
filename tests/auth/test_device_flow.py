"""`perffarm login` against a real server; the code is approved in real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from perffarm.commands import main
from tests.auth.conftest import PASSWORD
from tests.server.support import ADMIN, ServerProcess
from tests.support import require

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need_browser() -> None:
    require(
        Path(CHROMIUM).exists() and shutil.which("chromium") is not None,
        "headless Chromium is not installed",
    )


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "perffarm.commands", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


@pytest.mark.browser
def test_login_approved_in_chromium_then_whoami_token_logout(tmp_path: Path) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    database = str(tmp_path / "farm.db")
    assert main(["db", "upgrade", "--database", database]) == 0
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "perffarm.commands",
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--display-name",
            "Alice A.",
            "--database",
            database,
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    creds = tmp_path / "creds"
    env = dict(os.environ, PERFFARM_SERVER_DEVICE_INTERVAL="1")
    os.environ["PERFFARM_SERVER_DEVICE_INTERVAL"] = "1"
    try:
        server = ServerProcess(database, tmp_path).start()
    finally:
        os.environ.pop("PERFFARM_SERVER_DEVICE_INTERVAL")
    try:
        login = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perffarm.commands",
                "login",
                "--server",
                server.url,
                "--no-browser",
                "--creds-dir",
                str(creds),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        seen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not re.search(r"[A-Z]{4}-[A-Z]{4}", seen):
            seen += login.stderr.readline()
        code = re.search(r"[A-Z]{4}-[A-Z]{4}", seen).group(0)
        assert f"{server.url}/device" in seen.replace("\n", "")

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            answer = page.goto(f"{server.url}/device")
            assert "/signin" in page.url
            assert answer.headers["x-frame-options"] == "DENY"
            assert "script-src 'self'" in answer.headers["content-security-policy"]
            page.fill("#username", "alice")
            page.fill("#password", PASSWORD)
            page.click("#signin")
            page.wait_for_url(re.compile(r".*/device.*"))
            page.fill("#user_code", code.lower().replace("-", " "))
            page.click("#continue")
            assert code in page.inner_text("main")
            page.click("#approve")
            assert "Approved" in page.inner_text("#message")
            browser.close()

        out, err = login.communicate(timeout=30)
        assert login.returncode == 0, err
        assert "signed in to" in out and "alice" in out
        stored = creds / "user-credentials.json"
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        saved = json.loads(stored.read_text())["servers"][server.url]
        assert saved["access_token"].startswith("pfa_")

        who = _cli("whoami", "--json", "--creds-dir", str(creds))
        assert who.returncode == 0, who.stderr
        assert json.loads(who.stdout)["display_name"] == "Alice A."

        # An expired access token is refreshed on the next command, transparently.
        data = json.loads(stored.read_text())
        data["servers"][server.url]["expires_at"] = "2000-01-01T00:00:00+00:00"
        stored.write_text(json.dumps(data))
        made = _cli("token", "create", "--scope", "read", "--json", "--creds-dir", str(creds))
        assert made.returncode == 0, made.stderr
        token = json.loads(made.stdout)["token"]
        refreshed = json.loads(stored.read_text())["servers"][server.url]
        assert refreshed["access_token"] != saved["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/api/v1/me", headers=headers).status_code == 200

        listed = _cli("token", "list", "--json", "--creds-dir", str(creds))
        made_id = json.loads(made.stdout)["id"]
        assert listed.returncode == 0 and made_id in listed.stdout and token not in listed.stdout
        revoked = _cli("token", "revoke", made_id, "--creds-dir", str(creds))
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(f"{server.url}/api/v1/me", headers=headers).status_code == 401
        unknown = _cli("token", "revoke", "nosuchtoken0", "--creds-dir", str(creds))
        assert unknown.returncode == 1 and "no token with id" in unknown.stderr

        # The admin's user commands work through the API too, and show no emails.
        listed = _cli("user", "list", "--json", "--server", server.url, "--admin-token", ADMIN)
        assert listed.returncode == 0, listed.stderr
        assert [u["name"] for u in json.loads(listed.stdout)] == ["alice"]
        assert "email" not in listed.stdout

        out = _cli("logout", "--creds-dir", str(creds))
        assert out.returncode == 0 and "signed out" in out.stdout
        assert server.url not in json.loads(stored.read_text())["servers"]
        gone = httpx.get(
            f"{server.url}/api/v1/me",
            headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        )
        assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
        after = _cli("whoami", "--creds-dir", str(creds))
        assert after.returncode == 1 and "not signed in" in after.stderr
        assert "Traceback" not in after.stderr
        log = server.log.read_text()
        assert token not in log and refreshed["access_token"] not in log
    finally:
        server.stop()
