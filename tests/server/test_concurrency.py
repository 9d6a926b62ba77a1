"""A run written by another server process at the same moment is stored once."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from perffarm.server.core.principal import Machine
from perffarm.server.core.timeutil import now
from perffarm.server.services import ingest
from perffarm.server.settings import database_url
from perffarm.server.store import machines, migrate
from perffarm.server.store import tables as t
from perffarm.server.store.engine import make_engine
from perffarm.server.store.ingest import NewRun, insert_runs
from tests.server.support import make_run


def test_a_run_committed_by_another_writer_mid_batch_is_already_stored(database: str) -> None:
    engine = make_engine(database_url(database))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        machines.register(conn, "lab-01", "alice")
        row = conn.execute(sa.select(t.machines.c.id)).one()
    machine = Machine(id=row.id, name="lab-01", owner="alice", approved=True)
    contested, other = make_run(hour=1), make_run(hour=2)
    outcomes: list = []

    # Another writer (as another server process would) has written the run, not committed.
    with engine.connect() as conn:
        rival = conn.begin()
        prepared = ingest.prepare(0, contested)
        assert isinstance(prepared, NewRun)
        insert_runs(conn, machine, [prepared], None, now())
        worker = threading.Thread(
            target=lambda: outcomes.extend(
                ingest.Ingestor(engine).ingest(machine, [contested, other])
            )
        )
        worker.start()
        time.sleep(0.5)  # the batch is now waiting on, or about to meet, the rival's row
        rival.commit()
    worker.join(timeout=60)

    assert [o.outcome for o in outcomes] == ["already-stored", "stored"]
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(t.results)).scalar_one()
        runs = conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar_one()
    engine.dispose()
    assert (runs, count) == (2, 6)
