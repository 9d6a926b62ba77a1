"""`perffarm check`, the CI gate, on stored runs: exit codes, reports, usage errors."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from perffarm.agent.store import LocalStore
from perffarm.commands import main
from perffarm.model import Result, RunDocument, RunStatus


def test_check_fails_on_a_ten_percent_regression_and_names_it(
    runs: dict[str, RunDocument],
    store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    code = main(
        [
            "check",
            "--store",
            str(store_path),
            "--against",
            str(runs["baseline"].id)[:8],
            "--output",
            str(summary),
            "--junit",
            str(junit),
        ]
    )  # no --run: the latest stored run is the slower one
    assert code == 1
    assert "parse" in capsys.readouterr().out
    markdown = summary.read_text()
    title = markdown.splitlines()[0]
    assert "1 slower" in title and "parse" in title
    assert markdown.index("### Slower") < markdown.index("render")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    failed = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failed == ["parse[size=1000] time"]


def test_check_passes_when_runs_differ_only_by_noise(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--store",
            str(store_path),
            "--against",
            str(runs["baseline"].id),
            "--run",
            str(runs["noise"].id),
            "--format",
            "markdown",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("## ✅ perffarm: no regression beyond 5%")


def test_check_json_and_a_looser_limit(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--store", str(store_path), "--against", str(runs["baseline"].id)]
    assert main([*args, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == 1 and data["passed"] is False
    verdicts = {c["benchmark"]: c["verdict"] for c in data["comparisons"]}
    assert verdicts == {
        "parse": "slower",
        "render": "no significant change",
        "serve": "no significant change",
    }
    # A 10% slowdown is within a 15% limit.
    assert main([*args, "--max-regression", "15%", "--format", "json"]) == 0


def test_check_usage_errors_exit_2(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "check",
                "--store",
                str(store_path),
                "--against",
                str(runs["baseline"].id),
                "--format",
                "pdf",
            ]
        )
        == 2
    )
    assert main(["check", "--store", str(store_path)]) == 2  # --against is required


# -- issue 17, case 3: a verdict at any sample count, and a code of its own for "no verdict" --


def _sized_pair(store_path: Path, n: int) -> tuple[str, str]:
    """A baseline and a contender 10% slower, ``n`` samples a side, in a fresh store."""
    rng = np.random.default_rng(n)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ids = []
    with LocalStore(store_path) as store:
        for hours, level in ((0, 1.0), (1, 1.1)):
            run = RunDocument(
                project="sized",
                machine="m1",
                started_at=start + timedelta(hours=hours),
                results=[
                    Result(
                        benchmark="read",
                        metric="time",
                        unit="s",
                        samples=(level * (1 + rng.normal(0, 0.01, n))).tolist(),
                    )
                ],
            )
            store.save(run)
            ids.append(str(run.id))
    return ids[0], ids[1]


@pytest.mark.parametrize("n", [1, 2, 600, 100_000])
def test_compare_and_check_answer_at_any_sample_count(
    n: int, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline, contender = _sized_pair(store_path, n)
    store = ["--store", str(store_path)]
    assert main(["compare", baseline, contender, "--json", *store]) == 0
    (item,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert item["comparison"]["n_baseline"] == item["comparison"]["n_contender"] == n
    code = main(["check", "--against", baseline, "--run", contender, "--format", "json", *store])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if n >= 600:
        # Enough samples: the 10% slowdown is found, and exit 1 means exactly that.
        assert item["verdict"] == "slower"
        assert code == 1, captured.err
        assert json.loads(captured.out)["regressions"] == 1
    else:
        # One or two samples cannot be significant: no verdict (3), neither pass nor fail.
        assert item["verdict"] == "unknown"
        assert code == 3, captured.err
        report = json.loads(captured.out)
        assert report["judged"] is False and report["passed"] is False
        assert captured.err.startswith("error: could not judge:")
        assert "too few samples" in captured.err and len(captured.err.splitlines()) == 1


def _stored(store_path: Path, *runs: RunDocument) -> list[str]:
    with LocalStore(store_path) as store:
        for run in runs:
            store.save(run)
    return [str(run.id) for run in runs]


def test_check_without_anything_to_judge_exits_3_not_0(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0]
    baseline = RunDocument(
        project="p",
        machine="m1",
        results=[Result(benchmark="old", metric="time", unit="s", samples=samples)],
    )
    renamed = RunDocument(
        project="p",
        machine="m1",
        results=[Result(benchmark="new", metric="time", unit="s", samples=samples)],
    )
    build_failed = RunDocument(
        project="p", machine="m1", status=RunStatus.BUILD_FAILED, error="make: *** [all] Error 2"
    )
    base, other, broken = _stored(store_path, baseline, renamed, build_failed)
    summary = tmp_path / "summary.md"
    args = ["check", "--store", str(store_path), "--against", base, "--output", str(summary)]
    assert main([*args, "--run", other]) == 3
    assert "no benchmark, params and metric in common" in capsys.readouterr().err
    # The report is still written, and it does not say "passed".
    assert summary.read_text().startswith("## ⚠️ perffarm: no verdict")
    assert main([*args, "--run", broken]) == 3
    assert "the run checked has no results (status build-failed)" in capsys.readouterr().err


def test_check_that_cannot_read_its_runs_exits_3(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0]
    runs = [
        RunDocument(
            project="p",
            machine="m1",
            results=[Result(benchmark="b", metric="time", unit="s", samples=samples)],
        )
        for _ in range(2)
    ]
    base, contender = _stored(store_path, *runs)
    args = ["check", "--store", str(store_path), "--run", contender]
    # A baseline that is not in the store: missing data, no verdict.
    assert main([*args, "--against", "ffffffff"]) == 3
    assert "could not judge: no stored run has the id 'ffffffff'" in capsys.readouterr().err
    # A stored document damaged on disk: the crash it causes is one line and no verdict,
    # never the 1 of a regression.
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE runs SET document = ? WHERE id = ?", ('{"id": 5}', base))
    assert main([*args, "--against", base]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: could not judge: internal error (ValidationError")
    assert len(err.splitlines()) == 1


def test_check_help_documents_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 no regression; 1 a regression; 2 the command line or --suite file is wrong" in out
    assert "3 no verdict" in out
