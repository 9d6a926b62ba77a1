"""`perffarm changepoints` on files: the step found, its commits, input errors in one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from perffarm.commands import main


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
