"""The device authorization grant and refresh tokens, protocol level (RFC 8628, 6749, 7009)."""

from __future__ import annotations

import json

from perffarm.commands import main
from perffarm.server.http import oauth
from tests.auth.conftest import Farm, make_farm

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _start(farm: Farm, scope: str = "upload") -> dict:
    answer = farm.client.post(
        "/oauth/device_authorization", data={"client_id": "perffarm-cli", "scope": scope}
    )
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    return answer.json()


def _poll(farm: Farm, codes: dict):  # type: ignore[no-untyped-def]
    return farm.client.post(
        "/oauth/token",
        data={
            "grant_type": GRANT,
            "device_code": codes["device_code"],
            "client_id": "perffarm-cli",
        },
    )


def _decide(farm: Farm, codes: dict, user_id: int, allow: bool = True) -> None:
    with farm.engine.connect() as conn:
        assert oauth.approve_user_code(conn, codes["user_code"], user_id, allow=allow)


def test_metadata_lists_the_endpoints(farm: Farm) -> None:
    meta = farm.client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == "http://testserver"
    assert meta["device_authorization_endpoint"].endswith("/oauth/device_authorization")
    assert meta["token_endpoint"].endswith("/oauth/token")
    assert (
        GRANT in meta["grant_types_supported"] and "refresh_token" in meta["grant_types_supported"]
    )


def test_pending_slow_down_approved_then_used(database: str) -> None:
    for farm in make_farm(database, device_interval=5):
        codes = _start(farm)
        assert codes["interval"] == 5 and len(codes["user_code"]) == 9
        assert codes["verification_uri"] == "http://testserver/device"
        assert _poll(farm, codes).json()["error"] == "authorization_pending"
        assert _poll(farm, codes).json()["error"] == "slow_down"
        _decide(farm, codes, farm.alice.id)
        tokens = _poll(farm, codes).json()
        assert tokens["token_type"] == "Bearer" and tokens["scope"] == "read upload"
        me = farm.client.get("/api/v1/me", headers=farm.bearer(tokens["access_token"]))
        assert me.json()["name"] == "alice"
        assert _poll(farm, codes).json()["error"] == "expired_token"


def test_denied_unknown_and_bad_grant(farm: Farm) -> None:
    codes = _start(farm)
    _decide(farm, codes, farm.alice.id, allow=False)
    assert _poll(farm, codes).json()["error"] == "access_denied"
    unknown = _poll(farm, {"device_code": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"
    bad = farm.client.post("/oauth/token", data={"grant_type": "password"})
    assert bad.json()["error"] == "unsupported_grant_type"
    wrong_scope = farm.client.post(
        "/oauth/device_authorization", data={"client_id": "c", "scope": "everything"}
    )
    assert wrong_scope.json()["error"] == "invalid_scope"


def test_admin_scope_only_for_admins_and_refresh_rotates(farm: Farm) -> None:
    codes = _start(farm, "admin")
    _decide(farm, codes, farm.bob.id)
    tokens = _poll(farm, codes).json()
    assert tokens["scope"] == "read upload"
    fresh = farm.client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    ).json()
    assert fresh["access_token"] != tokens["access_token"]
    # The old refresh token is spent, and its access token went with it.
    again = farm.client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    old = farm.client.get("/api/v1/me", headers=farm.bearer(tokens["access_token"]))
    assert old.status_code == 401
    # A refresh token is never a bearer credential.
    as_bearer = farm.client.get("/api/v1/me", headers=farm.bearer(fresh["refresh_token"]))
    assert as_bearer.status_code == 401
    assert (
        farm.client.post("/oauth/revoke", data={"token": fresh["refresh_token"]}).status_code == 200
    )
    revoked = farm.client.get("/api/v1/me", headers=farm.bearer(fresh["access_token"]))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_device_page_approval_with_a_web_session(farm: Farm) -> None:
    from tests.auth.test_web import _csrf, _sign_in

    codes = _start(farm)
    redirected = farm.client.get(f"/device?user_code={codes['user_code']}", follow_redirects=False)
    assert redirected.status_code == 303 and "/signin?next=" in redirected.headers["location"]
    assert _sign_in(farm).status_code == 303
    token = _csrf(farm, "/device")
    confirm = farm.client.post(
        "/device", data={"user_code": codes["user_code"], "csrf_token": token}
    )
    assert confirm.status_code == 200 and "perffarm-cli" in confirm.text
    forged = farm.client.post(
        "/device",
        data={"user_code": codes["user_code"], "action": "approve", "csrf_token": "x" * 43},
    )
    assert forged.status_code == 403
    assert _poll(farm, codes).json()["error"] == "authorization_pending"
    done = farm.client.post(
        "/device", data={"user_code": codes["user_code"], "action": "approve", "csrf_token": token}
    )
    assert "Approved" in done.text
    assert "access_token" in _poll(farm, codes).json()


def test_user_commands_against_the_database(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    db = str(tmp_path / "farm.db")
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough password\n"))
    assert main(["user", "add", "dana", "--admin", "--password-stdin", "--database", db]) == 0
    assert "added user dana (admin)" in capsys.readouterr().out
    assert main(["user", "add", "dana", "--database", db]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["user", "add", "bad name", "--database", db]) == 1
    assert "invalid user name" in capsys.readouterr().err
    assert main(["user", "disable", "dana", "--database", db]) == 0
    assert main(["user", "list", "--json", "--database", db]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert listed[0]["name"] == "dana" and listed[0]["disabled"] is True
    assert main(["user", "disable", "nobody", "--database", db]) == 1
    err = capsys.readouterr().err
    assert "no user named 'nobody'" in err and "Traceback" not in err
    assert main(["user", "list", "--server", "http://127.0.0.1:1"]) == 2
