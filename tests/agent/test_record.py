"""Scrubbing a run document (issue 16, case 8): secrets leave its free text, and nothing
else changes; a part that does not validate is left out with a note, never the whole run."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from perffarm.agent.record import add_statistics, redact
from perffarm.agent.store import LocalStore
from perffarm.model import (
    Agent,
    Attachment,
    Build,
    BuildStep,
    Environment,
    MeasurementRecord,
    MeasurementStatus,
    Result,
    RunDocument,
    Source,
    Table,
)

SECRET = "s3cr3t-Pass"
# Secrets that would have broken the run when every string was scrubbed: digits of every
# timestamp, a fingerprint's characters, a name another part refers to.
AWKWARD = ["2", "22", "0", "-", "T", "ok", "build", "wall_time", "lab-01"]
_IDS = {"id", "project", "tag", "suite", "machine", "started_at", "finished_at", "status"}


def _document() -> RunDocument:
    started = datetime(2026, 12, 7, 22, 2, 2, 222222, tzinfo=UTC)
    results = [
        Result(
            benchmark="query",
            params={"clients": 22, "target": f"spice@127.0.0.1 with {SECRET}"},
            metric="wall_time",
            unit="s",
            samples=[0.22, 0.202, 0.2222],
            extra={"note": f"said {SECRET}", "key-22": 2},
        )
    ]
    add_statistics(results)
    return RunDocument(
        project="lab",
        tag="nightly-2",
        suite="suite.yaml",
        started_at=started,
        finished_at=started,
        error=f"query: failed with {SECRET}",
        machine="lab-01",
        source=Source(
            repository=f"https://bot:{SECRET}@example.org/repo.git",
            branch="main",
            commit="2222aaaa",
            subject="fix",
        ),
        environment=Environment(
            sections={"db": {"url": f"postgres://spice:{SECRET}@127.0.0.1:22/x", "port": 22}},
            fingerprint="22f0c2",
            fingerprint_keys=["db.port"],
        ),
        build=Build(
            directory="/srv/build",
            steps=[
                BuildStep(
                    name="build",
                    command=f"make PASSWORD={SECRET}",
                    exit_status=0,
                    log_attachment="build/01-build.log",
                )
            ],
        ),
        measurements=[
            MeasurementRecord(
                name="query",
                type="command",
                status=MeasurementStatus.OK,
                started_at=started,
                finished_at=started,
                options={"command": f"psql -c 'select 22' {SECRET}", "repeat": 2},
            )
        ],
        results=results,
        tables=[Table(name="query", fields=["repetition", "output"], rows=[[2, f"x {SECRET}"]])],
        attachments=[
            Attachment.from_bytes("build/01-build.log", f"$ make {SECRET}\n22 ok\n".encode())
        ],
        agent=Agent(version="0.2.2", command=["perffarm", "run", f"--tag={SECRET}"]),
    )


def test_secrets_leave_the_free_text() -> None:
    scrubbed = redact(_document(), [SECRET])
    assert SECRET not in scrubbed.to_json()
    assert scrubbed.error == "query: failed with ***"
    assert scrubbed.source.repository == "https://bot:***@example.org/repo.git"
    assert scrubbed.environment.sections["db"]["url"] == "postgres://spice:***@127.0.0.1:22/x"
    assert scrubbed.build is not None
    assert scrubbed.build.steps[0].command == "make PASSWORD=***"
    assert scrubbed.measurements[0].options["command"] == "psql -c 'select 22' ***"
    assert scrubbed.results[0].params["target"] == "spice@127.0.0.1 with ***"
    assert scrubbed.results[0].extra["note"] == "said ***"
    assert scrubbed.tables[0].rows == [[2, "x ***"]]
    assert scrubbed.attachments[0].data() == b"$ make ***\n22 ok\n"
    assert scrubbed.agent is not None and scrubbed.agent.command[-1] == "--tag=***"


def test_keys_ids_names_timestamps_and_numbers_never_change() -> None:
    document = _document()
    scrubbed = redact(document, [SECRET, *AWKWARD])
    for field in ("id", "project", "tag", "suite", "machine", "started_at", "finished_at"):
        assert getattr(scrubbed, field) == getattr(document, field), field
    assert scrubbed.status == document.status
    assert (scrubbed.source.branch, scrubbed.source.commit) == ("main", "2222aaaa")
    assert scrubbed.environment.fingerprint == "22f0c2"
    assert scrubbed.environment.fingerprint_keys == ["db.port"]
    assert scrubbed.environment.sections["db"]["port"] == 22
    result, original = scrubbed.results[0], document.results[0]
    assert (result.benchmark, result.metric, result.unit) == ("query", "wall_time", "s")
    assert result.samples == original.samples and result.summary == original.summary
    assert result.params["clients"] == 22
    assert "key-22" in result.extra
    assert scrubbed.build is not None
    assert scrubbed.build.steps[0].name == "build"
    assert scrubbed.build.steps[0].log_attachment == scrubbed.attachments[0].name
    assert scrubbed.measurements[0].name == "query"
    assert scrubbed.measurements[0].started_at == document.measurements[0].started_at
    assert scrubbed.tables[0].fields == ["repetition", "output"]
    assert scrubbed.tables[0].rows[0][0] == 2


@settings(max_examples=60, deadline=None)
@given(secrets=st.lists(st.text(min_size=1, max_size=12), max_size=6))
def test_whatever_the_secrets_the_run_is_kept_whole(secrets: list[str]) -> None:
    document = _document()
    scrubbed = redact(document, secrets)
    assert scrubbed.error is None or "left out" not in scrubbed.error
    assert scrubbed.model_dump(include=_IDS) == document.model_dump(include=_IDS)
    assert [r.samples for r in scrubbed.results] == [r.samples for r in document.results]
    numbers = [r.summary.model_dump(exclude={"warnings"}) for r in document.results if r.summary]
    assert [r.summary.model_dump(exclude={"warnings"}) for r in scrubbed.results if r.summary] == (
        numbers
    )
    assert [a.name for a in scrubbed.attachments] == [a.name for a in document.attachments]


def test_a_part_that_does_not_validate_is_left_out_with_a_note(store_path) -> None:
    document = _document()
    # A plug-in changed parts after the checks that made them (pydantic does not check an
    # assignment): a NaN sample, a table row one cell short, an attachment's bytes.
    document.results[0].samples.append(float("nan"))
    add_statistics(document.results)
    document.tables[0].rows.append([3])
    document.attachments.append(Attachment.from_bytes("out.txt", b"fine"))
    document.attachments[-1].content = "AAAA"
    kept = Result(benchmark="other", metric="wall_time", unit="s", samples=[1.0, 2.0])
    add_statistics([kept])
    document.results.append(kept)

    scrubbed = redact(document, [SECRET])
    with LocalStore(store_path) as store:
        store.save(scrubbed)
        stored = store.load(str(document.id))

    assert stored.id == document.id and stored.started_at == document.started_at
    assert stored.error is not None
    assert stored.error.startswith("query: failed with ***; left out before storing")
    assert "results[0].samples (samples must be finite numbers" in stored.error
    assert "tables[0]" in stored.error and "attachments[1]" in stored.error
    # Everything else of the run is there.
    assert [r.benchmark for r in stored.results] == ["query", "other"]
    assert stored.results[1].samples == [1.0, 2.0] and stored.results[1].summary == kept.summary
    assert [a.name for a in stored.attachments] == ["build/01-build.log"]
    assert stored.measurements == scrubbed.measurements
    for path in store_path.parent.glob(store_path.name + "*"):
        assert SECRET.encode() not in path.read_bytes(), path
