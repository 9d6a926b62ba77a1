"""Rate limits hold across server processes, and device codes do not pile up (issue 16,
case 6)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.core.timeutil import now, to_db
from perffarm.server.store import tables as t
from tests.auth.conftest import make_farm
from tests.server.conftest import make_settings


def _authorize(client: TestClient) -> int:
    answer = client.post("/oauth/device_authorization", data={"client_id": "x"})
    return answer.status_code


def test_device_authorizations_are_limited_across_processes_and_expired_codes_go(
    database: str,
) -> None:
    for farm in make_farm(database):
        # A second server process on the same database (as `--workers 2` runs them).
        with TestClient(create_app(make_settings(database), migrate_database=False)) as other:
            answers = [_authorize(farm.client if n % 2 else other) for n in range(30)]
        assert answers[:10] == [200] * 10, answers
        assert set(answers[10:]) == {429}
        limited = farm.client.post("/oauth/device_authorization", data={"client_id": "x"})
        assert int(limited.headers["retry-after"]) >= 1
        assert "sign-in requests" in limited.json()["detail"]
        with farm.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(t.device_codes)).scalar() == 10
            )
        # Codes past their expiry are deleted when the next one is made.
        with farm.engine.begin() as conn:
            conn.execute(
                t.device_codes.update().values(expires_at=to_db(now() - timedelta(seconds=1)))
            )
            conn.execute(t.rate_events.delete())
        assert _authorize(farm.client) == 200
        with farm.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(t.device_codes)).scalar() == 1
            )
