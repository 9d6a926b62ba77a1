"""The commands: changepoints on files, compare and the CI gate check on stored runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from perffarm.agent.store import LocalStore
from perffarm.cli import main
from perffarm.model import Direction, Result, RunDocument, Source


def _step_values(seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return np.concatenate((rng.normal(100, 1, 60), rng.normal(110, 1, 60))).round(4).tolist()


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_changepoints_on_a_csv_prints_the_step_with_its_commits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = _step_values()
    csv_file = _write_csv(
        tmp_path / "series.csv",
        ["commit,seconds"] + [f"c{i:03d},{v}" for i, v in enumerate(values)],
    )
    assert main(["changepoints", str(csv_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["column"] == "seconds" and data["points"] == 120
    (point,) = data["change_points"]
    assert point["index"] == 60
    assert point["commit"] == "c060" and point["previous_commit"] == "c059"
    assert point["magnitude"] == pytest.approx(0.10, abs=0.01)
    assert data["settings"] == {
        "window": 50,
        "p_value": 0.001,
        "min_magnitude": 0.02,
        "breaks": [],
    }

    assert main(["changepoints", str(csv_file)]) == 0
    out = capsys.readouterr().out
    assert "1 change point" in out
    assert "c059..c060" in out
    assert "+10." in out


def test_changepoints_picks_the_value_column_and_sorts_by_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = _step_values(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [f"{(start + timedelta(hours=i)).isoformat()},{v},{i}" for i, v in enumerate(values)]
    rows.reverse()  # written newest first: the time column puts them back in order
    csv_file = _write_csv(tmp_path / "s.csv", ["time,value,build", *rows])
    assert main(["changepoints", str(csv_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["index"] for p in data["change_points"]] == [60]
    assert data["change_points"][0]["time"] == (start + timedelta(hours=60)).isoformat()


def test_changepoints_reads_json_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps(_step_values(2)))
    assert main(["changepoints", str(numbers), "--json"]) == 0
    assert [p["index"] for p in json.loads(capsys.readouterr().out)["change_points"]] == [60]

    objects = tmp_path / "objects.json"
    objects.write_text(
        json.dumps([{"value": v, "commit": f"x{i}"} for i, v in enumerate(_step_values(2))])
    )
    assert main(["changepoints", str(objects), "--json", "--break", "60"]) == 0
    assert json.loads(capsys.readouterr().out)["change_points"] == []


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "no such file"),
        ("commit,name\na,b\n", [], "no numeric column"),
        ("a,b\n1,2\n3,4\n", [], "several numeric columns"),
        ("value\n1\nabc\n", [], "line 3"),
        ("value\n1\n2\n", ["--column", "nope"], "no column 'nope'"),
        ("value\n1\n2\n", ["--min-magnitude", "5"], "did you mean 5%"),
        ('[1, 2, "x"]', [], "not a number"),
    ],
)
def test_changepoints_input_errors_are_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / "input.csv"
    if content is not None:
        path.write_text(content)
    assert main(["changepoints", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _run(
    store: LocalStore, seed: int, slowdown: float, started: datetime, commit: str
) -> RunDocument:
    rng = np.random.default_rng(seed)
    results = [
        Result(
            benchmark="parse",
            params={"size": 1000},
            metric="time",
            unit="s",
            samples=(0.5 * slowdown * (1 + rng.normal(0, 0.01, 10))).tolist(),
        ),
        Result(
            benchmark="render",
            metric="time",
            unit="s",
            samples=(0.2 * (1 + rng.normal(0, 0.01, 10))).tolist(),
        ),
        Result(
            benchmark="serve",
            metric="throughput",
            unit="1/s",
            direction=Direction.HIGHER,
            samples=(5000 * (1 + rng.normal(0, 0.01, 10))).tolist(),
        ),
    ]
    run = RunDocument(
        project="demo",
        machine="m1",
        started_at=started,
        source=Source(branch="main", commit=commit),
        results=results,
    )
    store.save(run)
    return run


@pytest.fixture
def runs(store_path: Path) -> dict[str, RunDocument]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with LocalStore(store_path) as store:
        return {
            "baseline": _run(store, 1, 1.0, start, "aaaa"),
            "noise": _run(store, 2, 1.0, start + timedelta(hours=1), "bbbb"),
            "slower": _run(store, 3, 1.10, start + timedelta(hours=2), "cccc"),
        }


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
    assert main(["check", "--store", str(store_path), "--against", "ffffffff"]) == 2
    assert "no stored run" in capsys.readouterr().err
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


def test_compare_prints_a_table_and_json(
    runs: dict[str, RunDocument], store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, slower = str(runs["baseline"].id), str(runs["slower"].id)
    assert main(["compare", base, slower, "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "slower" in out and "parse" in out
    assert main(["compare", base, slower, "--store", str(store_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    parse = next(c for c in data["comparisons"] if c["benchmark"] == "parse")
    assert parse["verdict"] == "slower"
    assert parse["comparison"]["ratio"] == pytest.approx(1.1, abs=0.02)
    assert main(["compare", base, "nope", "--store", str(store_path)]) == 2
