"""pgbench output of PostgreSQL 15 (recorded from real runs) and 12 (the older wording)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perffarm.adapters.base import AdapterError, InputSource
from perffarm.adapters.pgbench import (
    SUMMARY_METRICS,
    PgbenchAdapter,
    mode_of,
    parse_pgbench_output,
    report_params,
    report_values,
    run_params,
)
from perffarm.model import Direction, Result

DATA = Path(__file__).parent.parent / "data" / "adapters" / "pgbench"


def _source(name: str) -> InputSource:
    return InputSource.from_path(DATA / name)


def _one(results: list[Result], metric: str, **params) -> Result:
    found = [
        r
        for r in results
        if r.metric == metric and all(r.params.get(k) == v for k, v in params.items())
    ]
    assert len(found) == 1, (metric, params, found)
    return found[0]


def test_pg15_summary_statements_and_progress() -> None:
    report = parse_pgbench_output((DATA / "pg15-tpcb-r-P.txt").read_text())
    assert report.version == "15.20 (Debian 15.20-0+deb12u1)"
    assert report.transaction_type == "<builtin: TPC-B (sort of)>"
    assert (report.scale, report.clients, report.threads, report.max_tries) == (1, 2, 2, 1)
    assert report.query_mode == "simple"
    assert report.duration_s == 3
    assert report.transactions == 7970
    assert report.failed_transactions == 0
    assert report.latency_average_ms == 0.752
    assert report.latency_stddev_ms == 0.270
    assert report.initial_connection_time_ms == 3.879
    assert report.tps == 2656.584313
    assert report.tps_including_connections is None
    assert len(report.statements) == 11
    update = report.statements[5]
    assert update.index == 6 and update.latency_ms == 0.094 and update.failures == 0
    assert update.text == (
        "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;"
    )
    assert [p.tps for p in report.progress] == [2519.7, 2606.0, 2842.3]
    assert report.progress[0].latency_ms == 0.790 and report.progress[0].failed == 0
    assert not report.progress_is_epoch and not report.aborted


def test_pg15_adapter_normalises_units() -> None:
    adapter = PgbenchAdapter()
    source = _source("pg15-tpcb-r-P.txt")
    assert adapter.sniff(source)
    parsed = adapter.parse(source)
    params = {"mode": "read-write", "clients": 2, "jobs": 2, "scale": 1}
    tps = _one(parsed.results, "tps")
    assert tps.params == params
    assert tps.unit == "1/s" and tps.direction is Direction.HIGHER
    assert tps.samples == [2656.584313]
    latency = _one(parsed.results, "latency_average")
    assert latency.unit == "s" and latency.original_unit == "ms"
    assert latency.direction is Direction.LOWER
    assert latency.samples == [pytest.approx(0.000752)]
    assert _one(parsed.results, "latency_stddev").samples == [pytest.approx(0.000270)]
    assert _one(parsed.results, "failed_transactions").samples == [0.0]
    end = _one(parsed.results, "statement_latency", statement="END;")
    assert end.samples == [pytest.approx(0.000217)] and end.params["statement_index"] == 11
    assert len([r for r in parsed.results if r.metric == "statement_latency"]) == 11
    series = {s.name: s for s in parsed.series}
    assert series["pgbench.tps"].unit == "1/s"
    assert series["pgbench.tps"].t == [1.0, 2.0, 3.0]
    assert series["pgbench.latency"].values == [
        pytest.approx(0.000790),
        pytest.approx(0.000766),
        pytest.approx(0.000704),
    ]
    assert parsed.environment["version"].startswith("15.20")


def test_pg15_without_r_and_prepared_protocol() -> None:
    parsed = PgbenchAdapter().parse(_source("pg15-select-only-prepared.txt"))
    tps = _one(parsed.results, "tps")
    assert tps.params == {
        "mode": "read-only",
        "clients": 1,
        "jobs": 1,
        "scale": 1,
        "protocol": "prepared",
    }
    assert not [r for r in parsed.results if r.metric in ("statement_latency", "latency_stddev")]
    assert parsed.series == []


def test_pg12_wording() -> None:
    report = parse_pgbench_output((DATA / "pg12-tpcb-r-P.txt").read_text())
    assert report.version is None
    assert report.tps == 1503.871349  # excluding connections establishing
    assert report.tps_including_connections == 1500.312231
    assert report.failed_transactions is None and report.max_tries is None
    assert report.initial_connection_time_ms is None
    assert len(report.statements) == 11
    assert all(s.failures is None for s in report.statements)
    assert report.statements[7].latency_ms == 0.905
    assert [p.failed for p in report.progress] == [None, None, None]
    assert report.progress[2].stddev_ms == 0.801

    adapter = PgbenchAdapter()
    source = _source("pg12-tpcb-r-P.txt")
    assert adapter.sniff(source)
    parsed = adapter.parse(source)
    assert _one(parsed.results, "tps").params == {
        "mode": "read-write",
        "clients": 4,
        "jobs": 2,
        "scale": 10,
    }
    assert not [r for r in parsed.results if r.metric == "failed_transactions"]


def test_pg12_several_scripts_keep_statements_apart() -> None:
    report = parse_pgbench_output((DATA / "pg12-two-scripts.txt").read_text())
    assert report.tps == 3001.2
    assert report.latency_average_ms == 0.667  # the overall line, not a script's
    assert [(s.script, s.index, s.text) for s in report.statements] == [
        (1, 1, "\\set aid random(1, 100000 * :scale)"),
        (1, 2, "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;"),
        (2, 1, "SELECT count(*) FROM pgbench_branches;"),
    ]
    parsed = PgbenchAdapter().parse(_source("pg12-two-scripts.txt"))
    count = _one(parsed.results, "statement_latency", script=2)
    assert count.samples == [pytest.approx(0.00123)]


def test_progress_with_timestamps_lag_and_nan() -> None:
    text = (
        "progress: 1795431747.982 s, 13758.3 tps, lat 0.072 ms stddev 0.027, lag 0.010 ms, "
        "0 failed\n"
        "progress: 1795431748.982 s, 0.0 tps, lat nan ms stddev nan, 2 failed, 1 skipped\n"
    )
    report = parse_pgbench_output(text)
    assert report.progress_is_epoch
    assert report.progress[0].lag_ms == 0.010
    assert report.progress[1].failed == 2 and report.progress[1].skipped == 1
    parsed = PgbenchAdapter().parse(InputSource.from_text(text))
    series = {s.name: s for s in parsed.series}
    assert series["pgbench.tps"].values == [13758.3, 0.0]
    assert series["pgbench.latency"].values == [pytest.approx(0.000072)]  # nan left out


def test_errors_name_the_line() -> None:
    text = "transaction type: <builtin: select only>\nscaling factor: ten\n"
    with pytest.raises(AdapterError, match=r"line 2: scaling factor"):
        parse_pgbench_output(text)
    with pytest.raises(AdapterError, match=r"line 3: cannot read pgbench summary line"):
        parse_pgbench_output("x\ny\ntps = what\n")
    failed = (
        'pgbench: error: bad.sql:1: syntax error at column 8 in command "set"\n'
        "pgbench: fatal: could not parse script\n"
    )
    with pytest.raises(AdapterError, match=r"no pgbench summary.*syntax error"):
        PgbenchAdapter().parse(InputSource.from_text(failed))


def test_sniff_refuses_other_formats() -> None:
    adapter = PgbenchAdapter()
    assert not adapter.sniff(InputSource.from_text("BenchmarkFoo-8  100  123 ns/op\n"))
    assert not adapter.sniff(InputSource.from_text('{"tps": 3}'))
    progress = "progress: 1.0 s, 10.0 tps, lat 1.0 ms stddev 0.1\n"
    assert adapter.sniff(InputSource.from_text(progress))


def test_modes_are_the_measurement_s_names() -> None:
    assert mode_of("<builtin: TPC-B (sort of)>") == "read-write"
    assert mode_of("<builtin: select only>") == "read-only"
    assert mode_of("<builtin: simple update>") == "simple-update"
    # A custom script as the measurement names it (script:PATH), with pgbench's path.
    assert mode_of("/srv/bench/count.sql") == "script:/srv/bench/count.sql"
    assert mode_of("multiple scripts") == "multiple scripts"
    assert mode_of("<builtin: something new>") == "<builtin: something new>"
    assert mode_of(None) is None


def test_one_table_of_what_a_run_yields() -> None:
    report = parse_pgbench_output((DATA / "pg15-tpcb-r-P.txt").read_text())
    values = report_values(report)
    names = [metric.name for metric, _, _ in values]
    assert names[:5] == [
        "tps",
        "latency_average",
        "latency_stddev",
        "failed_transactions",
        "initial_connection_time",
    ]
    assert names[5:] == ["statement_latency"] * 11
    assert [m.name for m, _ in SUMMARY_METRICS] == names[:5]
    assert values[4][2] == pytest.approx(0.003879)
    assert report_params(report) == {"mode": "read-write", "clients": 2, "jobs": 2, "scale": 1}
    assert run_params("read-only", 1, 1, 10, "simple") == {
        "mode": "read-only",
        "clients": 1,
        "jobs": 1,
        "scale": 10,
    }
