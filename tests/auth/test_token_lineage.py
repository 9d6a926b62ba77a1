"""A token makes only tokens no broader and no longer-lived than itself, and revoking it
revokes what it made (issue 16, case 3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from perffarm.server.store import tokens
from tests.auth.conftest import Farm, make_farm


def _create(farm: Farm, parent: str, **body: str | None) -> dict:
    answer = farm.client.post("/api/v1/tokens", json=body, headers=farm.bearer(parent))
    return {"status": answer.status_code, **answer.json()}


def _works(farm: Farm, token: str) -> bool:
    return farm.client.get("/api/v1/me", headers=farm.bearer(token)).status_code == 200


def test_a_short_lived_token_cannot_make_a_longer_lived_one(farm: Farm) -> None:
    short = farm.token(farm.alice, "upload", lifetime=timedelta(minutes=1))
    for expires in ("never", "90d", "2h"):
        refused = _create(farm, short, scope="read", expires=expires)
        assert refused["status"] == 403 and "outlive" in refused["detail"], refused
    # Without an expiry asked for, the token ends with its maker.
    made = _create(farm, short, scope="read")
    assert made["status"] == 201, made
    ends = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert ends <= datetime.now(ends.tzinfo) + timedelta(minutes=1)
    # Nor broader: a read token makes no upload token.
    reader = farm.token(farm.alice, "read")
    assert _create(farm, reader, scope="upload", expires="1h")["status"] == 403


def test_revoking_a_token_revokes_what_it_made_at_any_depth(farm: Farm) -> None:
    parent = farm.token(farm.alice, "upload", lifetime=timedelta(days=1))
    child = _create(farm, parent, scope="upload", expires="12h")
    grandchild = _create(farm, child["token"], scope="read", expires="1h")
    sibling = farm.token(farm.alice, "upload")
    assert all(_works(farm, t) for t in (child["token"], grandchild["token"], sibling))

    with farm.engine.connect() as conn:
        parent_id = tokens.id_of(conn, parent)
        assert parent_id is not None
        tokens.revoke(conn, parent_id, user_id=farm.alice.id)

    assert not _works(farm, parent)
    assert not _works(farm, child["token"])
    assert not _works(farm, grandchild["token"])
    assert _works(farm, sibling)


def test_a_sign_in_lends_its_lifetime_and_its_end_to_what_it_made(database: str) -> None:
    """A device-flow sign-in is the credential: its access token makes tokens that last at
    most as long as the sign-in, survive its rotation, and end with its logout; a spent
    refresh token used again ends the sign-in."""
    from tests.auth.test_oauth import _decide, _poll, _start

    for farm in make_farm(database, device_interval=1):
        codes = _start(farm)
        _decide(farm, codes, farm.alice.id)
        signed = _poll(farm, codes).json()
        assert _create(farm, signed["access_token"], scope="read", expires="never")["status"] == 403
        made = _create(farm, signed["access_token"], scope="read")
        assert made["status"] == 201
        ends = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
        assert ends <= datetime.now(ends.tzinfo) + tokens.REFRESH_LIFETIME

        renewed = farm.client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": signed["refresh_token"]},
        ).json()
        assert not _works(farm, signed["access_token"])  # spent by the rotation
        assert _works(farm, renewed["access_token"]) and _works(farm, made["token"])

        replayed = farm.client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": signed["refresh_token"]},
        )
        assert replayed.status_code == 400
        assert not _works(farm, renewed["access_token"])
        assert not _works(farm, made["token"])
