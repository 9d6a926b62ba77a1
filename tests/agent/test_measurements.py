"""The built-in measurements, driven through the runner with real commands and callables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from perffarm.agent.config import load_suite
from perffarm.agent.runner import RunSettings, run_suite
from perffarm.agent.store import LocalStore
from perffarm.commands import main
from perffarm.model import run_json_schema


def run(tmp_path: Path, store_path: Path, body: str, **settings):
    suite = tmp_path / "suite.yaml"
    suite.write_text("project: t\nrepeat: 3\nwarmup: 1\nsampler: {enabled: false}\n" + body)
    with LocalStore(store_path) as store:
        return run_suite(load_suite(suite), store, settings=RunSettings(**settings))


def test_command_records_time_rss_exit_status_and_json_metrics(tmp_path, store_path):
    payload = {"stats": {"latency_ms": 12.5, "ops": 4000}}
    (tmp_path / "out.json").write_text(json.dumps(payload))
    document = run(
        tmp_path,
        store_path,
        "measurements:\n"
        "  - name: cat\n"
        "    type: command\n"
        "    command: [cat, out.json]\n"
        "    metrics:\n"
        "      - {name: latency, json_path: '$.stats.latency_ms', unit: s, scale: 0.001}\n"
        "      - {name: ops, json_path: '$.stats.ops', unit: 1/s, direction: higher}\n",
    )
    assert document.status == "ok"
    by_metric = {result.metric: result for result in document.results}
    assert set(by_metric) == {"wall_time", "user_time", "sys_time", "max_rss", "latency", "ops"}
    assert by_metric["latency"].samples == [0.0125] * 3
    assert by_metric["ops"].direction == "higher"
    assert len(by_metric["wall_time"].warmup_samples) == 1
    assert by_metric["wall_time"].extra["exit_statuses"] == [0, 0, 0]
    # Forked from the small launcher, `cat` reports a few MiB, not perffarm's own memory.
    assert 0 < by_metric["max_rss"].summary.median < 40 * 1024 * 1024
    (table,) = document.tables
    assert len(table.rows) == 4 and table.fields[-1] == "exit_status"


def test_command_failures_are_clear(tmp_path, store_path):
    document = run(
        tmp_path,
        store_path,
        "measurements:\n"
        "  - {name: exits, type: command, command: 'echo boom >&2; exit 3'}\n"
        "  - {name: tolerated, type: command, command: 'exit 4', check: false}\n"
        "  - {name: slow, type: command, command: 'sleep 5', timeout: 0.2}\n"
        "  - {name: missing, type: command, command: [no-such-binary-here]}\n"
        "  - name: nomatch\n"
        "    type: command\n"
        "    command: 'echo hi'\n"
        "    metrics: [{name: x, regex: 'x=(\\d+)'}]\n",
    )
    assert document.status == "failed"
    records = {record.name: record for record in document.measurements}
    assert "exited with status 3" in records["exits"].error
    assert any(
        a.name == "exits.failed.stderr.txt" and a.data() == b"boom\n" for a in document.attachments
    )
    assert records["tolerated"].status == "ok"
    tolerated = next(
        r for r in document.results if r.benchmark == "tolerated" and r.metric == "wall_time"
    )
    assert tolerated.extra["exit_statuses"] == [4, 4, 4]
    assert "timed out after 0.2 s" in records["slow"].error
    assert "cannot start no-such-binary-here" in records["missing"].error
    assert "/x=(\\d+)/ not found in output" in records["nomatch"].error


def test_python_measurement_keeps_every_sample(tmp_path, store_path):
    (tmp_path / "work.py").write_text(
        "def make():\n    return list(range(1000))\n\n"
        "def total(values, factor):\n    return sum(values) * factor\n"
    )
    document = run(
        tmp_path,
        store_path,
        "measurements:\n"
        "  - {name: sum, type: python, callable: 'work.py:total', setup: 'work.py:make',"
        " args: [2], repeat: 6, number: 50}\n",
        repeat=None,
    )
    (result,) = document.results
    assert result.metric == "time" and result.unit == "s"
    assert len(result.samples) == 6 and len(result.warmup_samples) == 1
    assert result.extra == {"calls_per_sample": 50}
    assert all(sample > 0 for sample in result.samples)


def test_repeat_flag_wins_over_the_measurements_own_setting(tmp_path, store_path):
    document = run(
        tmp_path,
        store_path,
        "measurements:\n  - {name: t, type: command, command: 'true', repeat: 9}\n",
        repeat=2,
    )
    assert len(document.results[0].samples) == 2


def test_show_system_and_schema_commands(tmp_path, store_path, capsys):
    document = run(
        tmp_path, store_path, "measurements:\n  - {name: t, type: command, command: 'true'}\n"
    )
    assert main(["show", str(document.id)[:8], "--store", str(store_path)]) == 0
    shown = capsys.readouterr().out
    assert "wall_time" in shown and "environment" in shown and str(document.id) in shown

    assert main(["system", "--json"]) == 0
    system = json.loads(capsys.readouterr().out)
    assert system["sections"]["cpu"]["threads"] >= 1 and system["fingerprint"]

    assert main(["schema", "run"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.validate(json.loads(document.to_json()), schema)
    assert run_json_schema()["properties"]["schema"]["const"] == "perffarm.run/1"

    assert main(["show", "nope", "--store", str(store_path)]) == 1
    assert "no stored run has the id 'nope'" in capsys.readouterr().err


def test_import_refuses_bad_documents_with_the_json_path(tmp_path, store_path, capsys):
    document = run(
        tmp_path, store_path, "measurements:\n  - {name: t, type: command, command: 'true'}\n"
    )
    data = json.loads(document.to_json())
    data["results"][0]["samples"][1] = "fast"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    other = tmp_path / "other.db"
    assert main(["import", str(bad), "--store", str(other)]) == 2
    err = capsys.readouterr().err
    assert "$.results[0].samples[1]" in err and len(err.strip().splitlines()) == 1
    data["schema"] = "perffarm.run/7"
    bad.write_text(json.dumps(data))
    assert main(["import", str(bad), "--store", str(other)]) == 2
    assert "another perffarm version" in capsys.readouterr().err
    with LocalStore(other) as store:
        assert store.list_runs() == []


@pytest.mark.parametrize("argv", [["run", "--bogus"], ["runs", "--limit", "zero"], ["frobnicate"]])
def test_usage_mistakes_are_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--help" in err


def test_command_output_parsed_by_an_adapter_keeps_every_sample(tmp_path, store_path):
    (tmp_path / "emit.py").write_text(
        "import json, random\n"
        "print(json.dumps({'results': [{'benchmark': 'parse', 'metric': 'time', 'unit': 'ms',"
        " 'samples': [random.uniform(1, 2) for _ in range(4)]}]}))\n"
    )
    document = run(
        tmp_path,
        store_path,
        "measurements:\n"
        "  - name: tool\n"
        "    type: command\n"
        f"    command: [{sys.executable}, emit.py]\n"
        "    format: generic-json\n"
        "    record_time: false\n",
    )
    assert document.status == "ok", document.error
    (result,) = document.results
    # Three repetitions of a tool that reports four samples each: all twelve are kept,
    # converted from the tool's milliseconds to seconds.
    assert (result.benchmark, result.metric, result.unit) == ("parse", "time", "s")
    assert result.original_unit == "ms" and len(result.samples) == 12
    assert all(0.001 <= sample <= 0.002 for sample in result.samples)
