"""The dashboard tests' farm: a real server process holding a few known runs.

The runs are built with the run-document models and uploaded over HTTP as an agent would,
so the pages show what ingest stored, not fixtures written around it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from perffarm.analysis.statistics import summarize
from perffarm.model import (
    Attachment,
    Build,
    BuildStep,
    Direction,
    Environment,
    Result,
    RunDocument,
    Series,
    Source,
    Table,
)
from tests.server.support import ADMIN

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
TIMELINE_POINTS = 60
STEP_AT = 30  # first commit of the slower level
RELEASE_POINTS = 20
LOG_BYTES = b"configure: ok\nmake: 42 objects\n\x00\xffbinary tail\n"
REPORT_BYTES = b'{"report": true}\n'


@dataclass
class Farm:
    url: str
    timeline_commits: list[str] = field(default_factory=list)
    timeline_runs: list[str] = field(default_factory=list)
    rich_run: str = ""
    baseline: str = ""
    contender: str = ""
    hidden_run: str = ""
    expected_verdicts: dict[str, str] = field(default_factory=dict)


def _environment(cpu: str, fingerprint: str) -> Environment:
    return Environment(
        sections={
            "cpu": {"model": cpu, "cores": 8, "caches": {"l2": "1 MiB", "l3": "32 MiB"}},
            "memory": {"total_bytes": 32 * 2**30},
            "os": {"name": "Debian GNU/Linux 12", "kernel": "6.1.0-18-amd64"},
            "python": {"version": "3.11.2"},
        },
        fingerprint=fingerprint,
        fingerprint_keys=["cpu.model", "os.kernel"],
    )


def _result(benchmark: str, metric: str, samples: list[float], **kw: object) -> Result:
    return Result(
        benchmark=benchmark,
        metric=metric,
        samples=samples,
        summary=summarize(samples),
        **kw,  # type: ignore[arg-type]
    )


def _run(
    machine: str,
    *,
    commit: str,
    at: datetime,
    branch: str = "main",
    results: list[Result],
    fingerprint: str,
    cpu: str,
    **kw: object,
) -> RunDocument:
    return RunDocument(
        id=uuid.uuid4(),
        project="webshop",
        machine=machine,
        started_at=at + timedelta(minutes=10),
        finished_at=at + timedelta(minutes=12),
        source=Source(
            repository="https://example.org/webshop.git",
            branch=branch,
            commit=commit,
            commit_time=at,
            subject=f"commit {commit[:7]}",
        ),
        environment=_environment(cpu, fingerprint),
        results=results,
        **kw,  # type: ignore[arg-type]
    )


def timeline_runs(machine: str) -> tuple[list[RunDocument], list[RunDocument]]:
    """60 commits on main with a 10% slower step at commit 30, and 20 on a release branch."""
    rng = np.random.default_rng(7)
    main, release = [], []
    for index in range(TIMELINE_POINTS):
        level = 10.0 if index < STEP_AT else 11.0
        samples = [float(v) for v in level + rng.normal(0, 0.08, 7)]
        main.append(
            _run(
                machine,
                commit=hashlib.sha1(f"main {index}".encode()).hexdigest(),
                at=T0 + timedelta(hours=6 * index),
                results=[_result("checkout", "latency", samples, unit="ms", params={"clients": 4})],
                fingerprint="fp-lab-01",
                cpu="AMD EPYC 7543",
            )
        )
    for index in range(RELEASE_POINTS):
        samples = [float(v) for v in 9.5 + rng.normal(0, 0.08, 7)]
        release.append(
            _run(
                machine,
                commit=hashlib.sha1(f"release {index}".encode()).hexdigest(),
                at=T0 + timedelta(hours=6 * index * 3 + 1),
                branch="release-1",
                results=[_result("checkout", "latency", samples, unit="ms", params={"clients": 4})],
                fingerprint="fp-lab-01",
                cpu="AMD EPYC 7543",
            )
        )
    return main, release


def rich_run(machine: str) -> RunDocument:
    """A run with everything the run page shows: build, tables, series, attachments."""
    rng = np.random.default_rng(11)
    return _run(
        machine,
        commit="feedc0de" * 5,
        at=T0 + timedelta(days=40),
        tag="nightly",
        results=[
            _result("search", "latency", [float(v) for v in 5 + rng.normal(0, 0.1, 9)], unit="ms"),
            _result(
                "search",
                "throughput",
                [float(v) for v in 900 + rng.normal(0, 5, 9)],
                unit="1/s",
                direction=Direction.HIGHER,
            ),
        ],
        fingerprint="fp-lab-02",
        cpu="Intel Xeon Gold 6338",
        build=Build(
            steps=[
                BuildStep(
                    name="configure",
                    command="./configure",
                    seconds=3.25,
                    exit_status=0,
                    log_attachment="build/configure.log",
                ),
                BuildStep(name="build", command="make -j8", seconds=61.5, exit_status=0),
            ]
        ),
        tables=[
            Table(
                name="per-query",
                fields=["query", "rows", "ms"],
                rows=[["q1", 10, 1.5], ["q2", 2000, 12.25]],
            )
        ],
        series=[
            Series(
                name="cpu",
                unit="%",
                t=[float(i) for i in range(30)],
                values=[float(40 + 20 * np.sin(i / 4)) for i in range(30)],
            ),
            Series(
                name="memory",
                unit="bytes",
                t=[float(i) for i in range(30)],
                values=[float(1e9 + i * 1e7) for i in range(30)],
            ),
        ],
        attachments=[
            Attachment.from_bytes("build/configure.log", LOG_BYTES, "text/plain"),
            Attachment.from_bytes("report.json", REPORT_BYTES, "application/json"),
        ],
    )


# name -> (relative change of the contender, verdict compare_runs should give)
COMPARE_CASES = {
    "cart": (0.0, "no significant change"),
    "login": (-0.20, "faster"),
    "search": (0.25, "slower"),
    "payment": (0.15, "slower"),
    "catalog": (-0.10, "faster"),
    "profile": (0.0, "no significant change"),
}


def compare_pair(machine: str) -> tuple[RunDocument, RunDocument]:
    rng = np.random.default_rng(5)
    base_results, cont_results = [], []
    for offset, (name, (change, _)) in enumerate(COMPARE_CASES.items()):
        level = 10.0 + offset
        base = [float(v) for v in level + rng.normal(0, 0.05, 10)]
        cont = [float(v) for v in level * (1 + change) + rng.normal(0, 0.05, 10)]
        base_results.append(_result(name, "wall", base, unit="s"))
        cont_results.append(_result(name, "wall", cont, unit="s"))
    kw = {"fingerprint": "fp-lab-02", "cpu": "Intel Xeon Gold 6338"}
    baseline = _run(
        machine,
        commit="aaaa" * 10,
        at=T0 + timedelta(days=50),
        branch="main",
        results=base_results,
        **kw,
    )  # type: ignore[arg-type]
    contender = _run(
        machine,
        commit="bbbb" * 10,
        at=T0 + timedelta(days=51),
        branch="feature",
        results=cont_results,
        **kw,
    )  # type: ignore[arg-type]
    return baseline, contender


def register(client: httpx.Client, name: str, owner: str, approve: bool) -> dict[str, str]:
    answer = client.post("/api/v1/machines", json={"name": name, "owner": owner})
    answer.raise_for_status()
    if approve:
        client.post(f"/api/v1/machines/{name}/approve", headers=ADMIN_HEADERS).raise_for_status()
    return {"Authorization": f"Bearer {name}:{answer.json()['secret']}"}


def upload(client: httpx.Client, auth: dict[str, str], runs: list[RunDocument]) -> None:
    body = {"runs": [run.model_dump(mode="json", by_alias=True) for run in runs]}
    answer = client.post("/api/v1/runs/batch", json=body, headers=auth)
    answer.raise_for_status()
    outcomes = [o["outcome"] for o in answer.json()["outcomes"]]
    assert outcomes == ["stored"] * len(runs), answer.text


def populate(url: str) -> Farm:
    farm = Farm(url=url)
    with httpx.Client(base_url=url, timeout=60) as client:
        lab1 = register(client, "lab-01", "alice", approve=True)
        lab2 = register(client, "lab-02", "bob", approve=True)
        hidden = register(client, "hidden-01", "mallory", approve=False)
        main, release = timeline_runs("lab-01")
        upload(client, lab1, main + release)
        farm.timeline_commits = [run.source.commit or "" for run in main]
        farm.timeline_runs = [str(run.id) for run in main]
        rich = rich_run("lab-02")
        baseline, contender = compare_pair("lab-02")
        upload(client, lab2, [rich, baseline, contender])
        farm.rich_run, farm.baseline, farm.contender = (
            str(rich.id),
            str(baseline.id),
            str(contender.id),
        )
        secret = rich_run("hidden-01")
        upload(client, hidden, [secret])
        farm.hidden_run = str(secret.id)
    farm.expected_verdicts = {name: verdict for name, (_, verdict) in COMPARE_CASES.items()}
    return farm


PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@contextmanager
def opened(browser: Any, url: str, viewport: dict[str, int] = DESKTOP) -> Iterator[Any]:
    """A fresh page at ``url``; fails the test if the page logged any error."""
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        yield page
        assert errors == [], errors
    finally:
        context.close()


def shot(page: Any, folder: Path, name: str) -> None:
    # The top of the page at 16:9, small enough to be embedded in docs/web.md as is.
    page.evaluate("window.scrollTo(0, 0)")
    size = page.viewport_size
    height = min(size["height"], size["width"] * 9 // 16 if size["width"] > 600 else 740)
    page.screenshot(
        path=str(folder / name), clip={"x": 0, "y": 0, "width": size["width"], "height": height}
    )


def no_horizontal_scroll(page: Any) -> None:
    # Wide tables scroll inside their own box; the page itself must fit a phone.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, width
