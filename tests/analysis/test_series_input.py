"""Reading a series from CSV and JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perffarm.analysis.series_input import read_series
from perffarm.console import UsageError


def test_semicolon_csv_with_commits_and_blank_values(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("sha;ms;host\na1;1.5;x\na2;;x\na3;2.5;x\n")
    series = read_series(path)
    assert series.column == "ms"  # 'host' is not numeric, 'sha' is the commit column
    assert series.values == [1.5, 2.5]
    assert series.commits == ["a1", "a3"]
    assert series.skipped == ["line 3: no value"]


def test_named_columns_win_over_guessing(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("build,rev,a,b\n1,x,10,20\n2,y,11,21\n")
    series = read_series(path, column="b", commit_column="rev")
    assert series.values == [20.0, 21.0]
    assert series.commits == ["x", "y"]


def test_json_objects_are_ordered_by_time(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            [
                {"value": 3, "commit": "c", "time": "2026-01-03T00:00:00Z"},
                {"value": 1, "commit": "a", "time": "2026-01-01T00:00:00Z"},
                {"value": 2, "commit": "b", "time": "2026-01-02T00:00:00Z"},
            ]
        )
    )
    series = read_series(path)
    assert series.values == [1.0, 2.0, 3.0]
    assert series.commits == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,value\nyesterday,1\n", "neither a number nor an ISO 8601"),
        ("value\n", "header but no rows"),
        ("[true, 1]", "not a number"),
        ("[1, 2", "not valid JSON"),
    ],
)
def test_wrong_input_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ("s.json" if text.startswith("[") else "s.csv")
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        read_series(path)
