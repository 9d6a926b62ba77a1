"""Run documents with hostile text and extreme numbers, and what must hold of a stored run
(importable as ``tests.hostile_documents``): shared by the doors that take run documents
(HTTP upload and batch, gRPC SubmitRun, `perffarm import`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import strategies as st

from perffarm.model import Attachment, RunDocument
from tests.hostile import BAD_NUMBERS, finite_floats, hostile_text, name_text, visible_markup

T0 = datetime(2026, 1, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | finite_floats() | hostile_text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text(), inner, max_size=3),
    max_leaves=8,
)
param_values = st.one_of(
    hostile_text(max_size=30), st.integers(-(2**53), 2**53), finite_floats(), st.booleans()
)
optional_text = st.none() | hostile_text(max_size=300)


def _times() -> Any:
    return st.integers(-(10**6), 10**7).map(lambda s: (T0 + timedelta(seconds=s)).isoformat())


@st.composite
def results(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.sampled_from([0, 1, 2, 5, 12, 60, 300, 600]))
    samples = draw(st.lists(finite_floats(), min_size=size, max_size=size))
    result: dict[str, Any] = {
        "benchmark": draw(name_text(max_size=draw(st.sampled_from([40, 600])))),
        "params": draw(st.dictionaries(hostile_text(max_size=20), param_values, max_size=3)),
        "metric": draw(name_text(max_size=draw(st.sampled_from([30, 260])))),
        "unit": draw(
            st.sampled_from(["s", "bytes", "1/s", "%", "", "µs", "ops/s/core"])
            | hostile_text(max_size=60)
        ),
        "direction": draw(st.sampled_from(["lower", "higher"])),
        "samples": samples,
    }
    if draw(st.booleans()):
        result["warmup_samples"] = draw(st.lists(finite_floats(), max_size=3))
    if draw(st.booleans()):
        result["extra"] = draw(st.dictionaries(hostile_text(max_size=20), json_values, max_size=3))
    if draw(st.booleans()):
        result["measurement"] = draw(hostile_text())
    if draw(st.booleans()):
        result["original_unit"] = draw(hostile_text(max_size=20))
    if draw(st.integers(0, 4)) == 0:
        stat = finite_floats() | st.none()
        result["summary"] = {
            "n": draw(st.integers(0, 10**6)),
            "mean": draw(stat),
            "median": draw(stat),
            "stdev": draw(stat),
            "min": draw(stat),
            "max": draw(stat),
            "warnings": draw(st.lists(hostile_text(), max_size=2)),
        }
    return result


@st.composite
def attachments(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(st.binary(max_size=64))
    name = draw(name_text(max_size=40))
    media_type = draw(
        st.sampled_from(["text/plain", "application/json; charset=utf-8", "image/svg+xml"])
        | hostile_text(max_size=30)
    )
    built = Attachment.from_bytes("placeholder", data).model_dump(mode="json")
    return {**built, "name": name, "media_type": media_type}


@st.composite
def run_documents(draw: st.DrawFn, machine: str = "fuzz-box") -> dict[str, Any]:
    """A run document (as JSON values) with hostile text and extreme numbers anywhere a
    client may put them; its id is made from its content, so equal documents share it."""
    text = hostile_text
    document: dict[str, Any] = {
        "schema": "perffarm.run/1",
        "id": "",  # from the content, below: the same document always has the same id
        "project": draw(name_text(max_size=draw(st.sampled_from([30, 260])))),
        "machine": draw(st.just(machine) | name_text(max_size=30)),
        "started_at": draw(_times()),
        "status": draw(st.sampled_from(["ok", "failed", "interrupted", "build-failed"])),
        "source": {
            "repository": draw(optional_text),
            "branch": draw(st.none() | name_text(max_size=draw(st.sampled_from([30, 260])))),
            "commit": draw(st.none() | name_text(max_size=draw(st.sampled_from([40, 120])))),
            "commit_time": draw(st.none() | _times()),
            "subject": draw(optional_text),
        },
        "environment": {
            "sections": draw(
                st.dictionaries(
                    name_text(max_size=20),
                    st.dictionaries(hostile_text(max_size=20), json_values, max_size=4),
                    max_size=3,
                )
            ),
            "fingerprint": draw(hostile_text(max_size=draw(st.sampled_from([30, 260])))),
            "fingerprint_keys": draw(st.lists(hostile_text(max_size=20), max_size=3)),
        },
        "results": draw(st.lists(results(), max_size=draw(st.sampled_from([3, 40])))),
    }
    for field in ("tag", "suite", "error"):
        if draw(st.booleans()):
            document[field] = draw(text(max_size=draw(st.sampled_from([30, 260]))))
    if draw(st.booleans()):
        document["params"] = draw(
            st.dictionaries(hostile_text(max_size=20), param_values, max_size=3)
        )
    if draw(st.booleans()):
        document["measurements"] = [
            {
                "name": draw(text()),
                "type": draw(text()),
                "status": draw(st.sampled_from(["ok", "failed", "interrupted", "skipped"])),
                "error": draw(st.none() | text()),
                "params": draw(
                    st.dictionaries(hostile_text(max_size=20), param_values, max_size=2)
                ),
                "options": draw(
                    st.dictionaries(hostile_text(max_size=20), json_values, max_size=2)
                ),
            }
        ]
    if draw(st.booleans()):
        width = draw(st.integers(1, 3))
        document["tables"] = [
            {
                "name": draw(text()),
                "fields": draw(st.lists(text(max_size=20), min_size=width, max_size=width)),
                "rows": draw(
                    st.lists(st.lists(json_values, min_size=width, max_size=width), max_size=3)
                ),
            }
        ]
    if draw(st.booleans()):
        length = draw(st.integers(0, 20))
        document["series"] = [
            {
                "name": draw(text()),
                "unit": draw(text(max_size=10)),
                "t": draw(st.lists(finite_floats(), min_size=length, max_size=length)),
                "values": draw(st.lists(finite_floats(), min_size=length, max_size=length)),
            }
        ]
    if draw(st.booleans()):
        document["build"] = {
            "directory": draw(st.none() | text()),
            "succeeded": draw(st.booleans()),
            "steps": [
                {
                    "name": draw(text()),
                    "command": draw(st.none() | text()),
                    "seconds": draw(st.none() | finite_floats()),
                    "exit_status": draw(st.none() | st.integers(-(2**31), 2**31)),
                    "log_attachment": draw(st.none() | text()),
                }
            ],
        }
    if draw(st.booleans()):
        document["attachments"] = draw(st.lists(attachments(), max_size=2))
    document["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(document, sort_keys=True)))
    return document


@st.composite
def run_bodies(draw: st.DrawFn, machine: str = "fuzz-box") -> tuple[dict[str, Any], str]:
    """A document and the JSON text sent for it: as written, or with one number spelled in
    a way no double holds (which must be refused)."""
    document = draw(run_documents(machine))
    text = json.dumps(document)
    with_samples = [r for r in document["results"] if r["samples"]]
    if with_samples and draw(st.integers(0, 5)) == 0:
        marker = 7.0e-310  # a subnormal no other sample of the strategy spells this way
        with_samples[0]["samples"][0] = marker
        text = json.dumps(document).replace(repr(marker), draw(st.sampled_from(BAD_NUMBERS)), 1)
    return document, text


# -- what must hold of a stored run -------------------------------------------------------------


def ok(answer: httpx.Response, where: str) -> httpx.Response:
    assert answer.status_code == 200, (where, answer.status_code, answer.text[:500])
    return answer


def page(client: httpx.Client, path: str, **params: Any) -> str:
    """An HTML page that answers 200 and holds no markup made from user text."""
    html = ok(client.get(path, params=params), path).text
    assert visible_markup(html) == [], (path, visible_markup(html))
    return html


def check_run(
    client: httpx.Client, run_id: str, expected: RunDocument, other: str | None = None
) -> None:
    """A stored run reads back whole (as a document, as the download, its attachments) and
    every view of it answers: its page, its comparison with itself and with ``other``
    both ways, its results' timelines and series, the listings of its project.
    ``client`` is based at the server's root (a TestClient or an httpx.Client)."""
    text = ok(client.get(f"/api/v1/runs/{run_id}"), "run").text
    assert RunDocument.from_json(text) == expected
    assert ok(client.get(f"/runs/{run_id}/run.json"), "download").text == text
    for attachment in expected.attachments:
        answer = client.get(f"/api/v1/runs/{run_id}/attachments/{quote(attachment.name, safe='')}")
        assert ok(answer, "attachment").content == attachment.data()
    ok(client.get(f"/api/v1/views/runs/{run_id}"), "run twin").json()
    page(client, f"/runs/{run_id}")
    pairs = [(run_id, run_id)]
    if other is not None:
        pairs += [(other, run_id), (run_id, other)]
    for a, b in pairs:
        page(client, "/compare", a=a, b=b)
        ok(client.get("/api/v1/views/compare", params={"a": a, "b": b}), "compare twin").json()
    project = expected.project
    for result in expected.results[:3]:
        line = {
            "project": project,
            "benchmark": result.benchmark,
            "metric": result.metric,
            "params": json.dumps(result.params),
        }
        page(client, "/timeline", **line)
        for twin in ("timeline", "timeline/changepoints"):
            ok(client.get(f"/api/v1/views/{twin}", params=line), twin).json()
        ok(client.get("/api/v1/series", params=line), "series").json()
    ok(client.get("/api/v1/runs", params={"project": project}), "runs").json()
    ok(client.get("/api/v1/results", params={"project": project}), "results").json()
    ok(client.get("/api/v1/series/keys", params={"project": project}), "keys").json()
    page(client, "/timeline", project=project)


def check_farm_pages(client: httpx.Client, machine: str, owner: str) -> None:
    """The pages and twins that list everything: home, machines, people."""
    person = quote(owner, safe="")
    for path in ("/", "/machines", f"/machines/{machine}", "/people", f"/people/{person}"):
        page(client, path)
    for twin in ("home", "machines", f"machines/{machine}", "people", f"people/{person}"):
        ok(client.get(f"/api/v1/views/{twin}"), twin).json()
    ok(client.get("/api/v1/alerts/status"), "alerts").json()
