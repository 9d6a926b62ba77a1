"""`perffarm ingest` and `perffarm formats` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perffarm.adapters.registry import parse_path
from perffarm.commands import main
from tests.adapters.tools import DATA

GO_SAMPLE = DATA / "go-bench" / "two-packages.txt"


def test_dry_run_prints_what_was_read_and_stores_nothing(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ingest", str(GO_SAMPLE), "--dry-run", "--store", str(store_path)])
    output = capsys.readouterr().out
    assert code == 0
    assert "two-packages.txt (go-bench)" in output
    assert "BenchmarkEncode" in output and "1.05 µs" in output
    assert "dry run: 15 results read, nothing stored" in output
    assert not store_path.exists()


def test_dry_run_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", str(DATA / "hyperfine" / "parameters.json"), "--dry-run", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (summary["format"], summary["stored"], summary["run_id"]) == ("hyperfine", False, None)
    assert len(summary["results"]) == 8
    wall = summary["results"][0]
    assert wall["benchmark"] == "gzip -{level} -c data.bin"
    assert (wall["metric"], wall["n"], wall["unit"]) == ("wall time", 5, "s")
    assert wall["median"] == pytest.approx(0.25401)
    assert wall["params"] == {"level": 6}


def test_explicit_format_is_used_without_detection(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", str(GO_SAMPLE), "--format", "go-bench", "--dry-run", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["format"] == "go-bench"


def test_unknown_format_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", str(GO_SAMPLE), "--format", "nope", "--dry-run"])
    error = capsys.readouterr().err
    assert code == 2
    assert "unknown format 'nope'" in error and "hyperfine" in error


def test_broken_input_names_the_line_and_stores_nothing(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "bench.txt"
    lines = GO_SAMPLE.read_text().splitlines()
    lines[7] = lines[7].replace("5821 ns/op", "58x1 ns/op")
    broken.write_text("\n".join(lines) + "\n")
    code = main(["ingest", str(broken), "--store", str(store_path)])
    error = capsys.readouterr().err
    assert code == 2
    assert "bench.txt: line 8: '58x1' is not a number" in error
    assert len(error.strip().splitlines()) == 1
    assert not store_path.exists()


def test_broken_json_names_the_json_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((DATA / "jmh" / "results.json").read_text())
    document[1]["primaryMetric"]["rawData"][0][2] = "fast"
    broken = tmp_path / "jmh.json"
    broken.write_text(json.dumps(document))
    code = main(["ingest", str(broken), "--dry-run"])
    assert code == 2
    assert (
        "jmh.json: $[1].primaryMetric.rawData[0][2]: expected a number" in capsys.readouterr().err
    )


def test_unrecognised_file_says_what_was_tried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = tmp_path / "notes.txt"
    unknown.write_text("nothing to see\n")
    assert main(["ingest", str(unknown), "--dry-run"]) == 2
    assert "could not tell the format of notes.txt: tried" in capsys.readouterr().err


def test_ingest_stores_one_run_with_every_result(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perffarm.agent.store import LocalStore

    code = main(
        ["ingest", str(GO_SAMPLE), "--project", "shop", "--tag", "nightly",
         "--store", str(store_path), "--json"]
    )  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["stored"] is True
    with LocalStore(store_path) as store:
        run = store.load(summary["run_id"])
    assert (run.project, run.tag) == ("shop", "nightly")
    assert len(run.results) == 15
    encode = next(r for r in run.results if r.params.get("format") == "gob" and r.metric == "time")
    assert encode.summary is not None and encode.summary.n == 3
    # Every sample of the file is stored, as written there (ns/op, in seconds).
    assert encode.samples == pytest.approx([4012e-9, 3998e-9, 4050e-9], rel=1e-12)
    _, parsed = parse_path(GO_SAMPLE)
    assert [(r.benchmark, r.metric, r.params, r.samples) for r in run.results] == [
        (r.benchmark, r.metric, r.params, r.samples) for r in parsed.results
    ]
    assert any(name.startswith("tool.") for name in run.environment.sections)


def test_formats_lists_every_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name in ("hyperfine", "jmh", "generic-csv", "criterion", "vitest"):
        assert rows[name]["description"] and rows[name]["error"] is None
    assert main(["formats"]) == 0
    assert "Google Benchmark JSON" in capsys.readouterr().out


def test_names_with_brackets_print_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"results": [{"benchmark": "test_sort[bold]", "metric": "time", "unit": "s",
                             "samples": [1.0], "params": {"case": "[red]x[/red]"}}]}  # fmt: skip
    path = tmp_path / "generic.json"
    path.write_text(json.dumps(document))
    assert main(["ingest", str(path), "--dry-run"]) == 0
    output = capsys.readouterr().out
    assert "test_sort[bold]" in output and "case=[red]x[/red]" in output


def test_benchmark_names_an_input_of_one_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    hyperfine = str(DATA / "hyperfine" / "parameters.json")
    code = main(["ingest", hyperfine, "--benchmark", "gzip", "--dry-run", "--json"])
    results = json.loads(capsys.readouterr().out)["results"]
    assert code == 0 and {r["benchmark"] for r in results} == {"gzip"}
    assert len(results) == 8


def test_benchmark_refuses_an_input_of_several(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", str(GO_SAMPLE), "--benchmark", "one", "--dry-run"])
    error = capsys.readouterr().err
    assert code == 2
    assert "--benchmark: the input holds" in error and "a new name fits one only" in error
    assert main(["ingest", str(GO_SAMPLE), "--benchmark", " ", "--dry-run"]) == 2
