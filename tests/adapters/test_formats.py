"""Every format against its sample file: result count, chosen values, units, sample counts.

The samples under tests/data/adapters are written in each tool's documented format for the
tools this machine cannot run (JMH, Criterion, k6, BenchmarkDotNet, ...); the expected
figures below are read off those files by hand.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from perffarm.adapters.base import InputSource
from perffarm.adapters.registry import detect, get_adapter
from perffarm.model import Direction
from tests.adapters.helpers import approx, parse_file, parse_sample, pick, pick_exact
from tests.adapters.samples import file_samples, sample_id
from tests.adapters.tools import DATA

MIB = 1024.0**2
GIB = 1024.0**3


def test_generic_json_keeps_samples_params_direction_and_warmups() -> None:
    parsed = parse_sample("generic-json", "generic-json/results.json")
    assert len(parsed.results) == 4
    latency = pick(parsed, "checkout", "latency")
    assert latency.params == {"clients": 16, "mode": "read-write"}
    assert latency.samples == approx([0.0125, 0.0131, 0.0129, 0.014])
    assert latency.warmup_samples == approx([0.0302])
    assert (latency.unit, latency.original_unit, latency.direction) == ("s", "ms", Direction.LOWER)
    throughput = pick(parsed, "checkout", "throughput")
    assert (throughput.unit, throughput.direction, len(throughput.samples)) == (
        "1/s",
        Direction.HIGHER,
        3,
    )
    assert pick(parsed, "image size", "size").samples == approx([212.5 * MIB])
    ratio = pick(parsed, "cache", "hit ratio")
    assert (ratio.unit, ratio.direction, ratio.extra) == (
        "%",
        Direction.HIGHER,
        {"note": "warm cache"},
    )
    assert parsed.environment == {"tool": "in-house load generator", "version": "2.3"}


def test_an_integer_no_double_holds_is_a_value_that_is_not_finite() -> None:
    """Found by tests/commands/test_hostile_files.py: an integer of 400 digits in a JSON
    input was an OverflowError (a traceback from `perffarm ingest`); it is infinite, as
    1e999 is, and left out with the other values that are not finite."""
    huge = "1" + "0" * 400
    text = (
        '{"results": [{"benchmark": "b", "metric": "m", "unit": "s", '
        f'"samples": [{huge}, -{huge}, "{huge}", 2.0]}}]}}'
    )
    (result,) = get_adapter("generic-json").parse(InputSource.from_text(text)).results
    assert result.samples == [2.0]
    assert result.extra["dropped_samples"] == ["inf", "-inf", "inf"]


def test_generic_csv_groups_rows_into_samples_by_params() -> None:
    parsed = parse_sample("generic-csv", "generic-csv/results.csv")
    assert len(parsed.results) == 4
    busy = pick(parsed, "checkout", "latency", clients=16)
    assert busy.params == {"clients": 16, "mode": "read-write"}
    assert busy.samples == approx([0.0125, 0.0131, 0.0129])
    assert len(pick(parsed, "checkout", "latency", clients=1).samples) == 2
    throughput = pick(parsed, "checkout", "throughput")
    assert (throughput.samples, throughput.unit, throughput.direction) == (
        approx([1250.0, 1198.5]),
        "1/s",
        Direction.HIGHER,
    )
    image = pick(parsed, "image size", "size")
    assert image.params == {}
    assert image.samples == approx([212.5 * MIB])


def test_pytest_benchmark_sample_file() -> None:
    parsed = parse_sample("pytest-benchmark", "pytest-benchmark/sort.json")
    assert len(parsed.results) == 4
    sort = pick(parsed, "tests/test_perf.py::test_sort", "time")
    assert sort.params == {"order": "random"}
    assert sort.samples == approx([5.01e-05, 5.2e-05, 6.3e-05, 5.05e-05, 5.5e-05])
    assert sort.unit == "s" and sort.original_unit is None
    assert sort.extra["group"] == "sorting"
    assert sort.extra["extra_info"] == {"items": 1000}
    ops = pick(parsed, "tests/test_perf.py::test_sort", "ops")
    assert (ops.samples, ops.unit, ops.direction) == ([18566.65], "1/s", Direction.HIGHER)
    lookup = pick(parsed, "tests/test_perf.py::test_lookup", "time")
    assert lookup.params == {} and len(lookup.samples) == 6
    assert lookup.extra["iterations"] == 100
    assert parsed.source is not None
    assert parsed.source.commit == "9c1f0d4e2b7a6c5d8e9f0a1b2c3d4e5f6a7b8c9d"
    assert (parsed.source.branch, parsed.source.dirty) == ("main", True)
    assert parsed.source.commit_time is not None
    assert parsed.source.commit_time.utcoffset().total_seconds() == 7200
    assert parsed.environment["machine_info"]["node"] == "bench-1"


def test_hyperfine_runs_memory_exit_codes_and_parameters() -> None:
    parsed = parse_sample("hyperfine", "hyperfine/parameters.json")
    assert len(parsed.results) == 8
    wall = pick(parsed, "gzip -{level} -c data.bin", "wall time", level=6)
    assert wall.samples == approx([0.24902, 0.25401, 0.26311, 0.25112, 0.2559])
    assert wall.extra["command"] == "gzip -6 -c data.bin"
    assert wall.extra["exit_codes"] == [0, 0, 0, 0, 0]
    memory = pick(parsed, "gzip -{level} -c data.bin", "max memory", level=6)
    assert (memory.unit, len(memory.samples), memory.samples[0]) == ("bytes", 5, 3383296.0)
    assert pick(parsed, "gzip -{level} -c data.bin", "user time", level=6).samples == [0.24012]
    slow = pick(parsed, "gzip -{level} -c data.bin", "wall time", level=9)
    assert len(slow.samples) == 3 and slow.extra["exit_codes"] == [0, 1, 0]


def test_google_benchmark_nan_infinity_aggregates_and_errors() -> None:
    parsed = parse_sample("google-benchmark", "google-benchmark/nan-and-aggregates.json")
    assert len(parsed.results) == 8
    real = pick(parsed, "BM_Decode/4096", "real_time")
    assert real.samples == approx([4651.2e-9, 4662.3e-9, 4658.8e-9])
    assert (real.unit, real.original_unit) == ("s", "ns")
    assert real.extra["aggregates"] == {"mean": 4657.4, "cv": 1.2e-03}
    assert real.extra["iterations"] == [150000, 150000, 150000]
    rate = pick(parsed, "BM_Decode/4096", "bytes_per_second")
    assert rate.samples == approx([8.8270e08, 8.8056e08])
    assert (rate.unit, rate.direction, rate.extra["dropped_samples"]) == (
        "bytes/s",
        Direction.HIGHER,
        ["inf"],
    )
    ratio = pick(parsed, "BM_Decode/4096", "ratio")
    assert ratio.samples == [0.5] and ratio.extra["dropped_samples"] == ["nan", "nan"]
    encode = pick(parsed, "BM_Encode/threads:2", "real_time")
    assert encode.samples == approx([12.5e-6])
    assert encode.extra["threads"] == 2 and "samples_from" in encode.extra
    assert pick(parsed, "BM_Encode/threads:2", "items_per_second").samples == [8.0e04]
    failed = pick(parsed, "BM_Fails", "real_time")
    assert failed.samples == [] and failed.extra["errors"] == ["could not open input file"]
    assert parsed.environment["num_cpus"] == 8
    assert parsed.environment["library_build_type"] == "release"


def test_go_bench_sub_benchmarks_packages_and_custom_units() -> None:
    parsed = parse_sample("go-bench", "go-bench/two-packages.txt")
    assert len(parsed.results) == 15
    total = pick(parsed, "BenchmarkTotal", "time")
    assert total.params == {"gomaxprocs": 4}
    assert total.samples == approx([1052e-9, 1061e-9, 1049e-9])
    assert (total.unit, total.original_unit) == ("s", "ns/op")
    assert total.extra["pkg"] == "example.com/shop/cart"
    json_rate = pick(parsed, "BenchmarkEncode", "throughput", format="json")
    assert json_rate.params == {"gomaxprocs": 4, "format": "json", "items": 10}
    assert json_rate.samples == approx([87.95e6, 88.42e6, 86.73e6])
    assert (json_rate.unit, json_rate.direction) == ("bytes/s", Direction.HIGHER)
    assert pick(parsed, "BenchmarkEncode", "allocated", format="gob").samples == [512.0] * 3
    hits = pick(parsed, "BenchmarkQuery", "hits/op")
    assert (hits.unit, hits.samples) == ("hits/op", [3.0, 3.0])
    assert pick(parsed, "BenchmarkQuery", "allocations").samples == [31.0, 31.0]
    assert parsed.environment["goarch"] == "arm64"
    assert parsed.environment["cpu"] == "Neoverse-N1"
    assert parsed.environment["packages"] == ["example.com/shop/cart", "example.com/shop/search"]


def test_pyperf_values_warmups_and_rss() -> None:
    parsed = parse_sample("pyperf", "pyperf/suite.json")
    assert len(parsed.results) == 4
    dumps = pick(parsed, "json_dumps", "time")
    assert dumps.samples == approx([0.00146, 0.00147, 0.00145, 0.00148, 0.00146, 0.00149])
    # The calibration run has five warm-ups and no values; the other runs one each.
    assert len(dumps.warmup_samples) == 7
    assert pick(parsed, "json_dumps", "max RSS").samples == [21004288.0, 21008384.0, 21012480.0]
    regex = pick(parsed, "regex_compile", "time")
    assert (len(regex.samples), len(regex.warmup_samples)) == (4, 2)
    assert parsed.environment["cpu_model_name"] == "AMD EPYC 7763 64-Core Processor"


def test_wrk_with_latency_distribution_and_errors() -> None:
    parsed = parse_sample("wrk", "wrk/latency-errors.txt")
    assert len(parsed.results) == 22
    url = "http://10.0.0.5:8080/api/items"
    mean = pick(parsed, url, "latency mean")
    assert mean.params == {"duration": "30s", "threads": 4, "connections": 100}
    assert (mean.samples, mean.unit, mean.original_unit) == (approx([0.01231]), "s", "ms")
    assert pick(parsed, url, "latency p99").samples == approx([0.0451])
    assert pick(parsed, url, "requests/s per thread mean").samples == approx([2100.0])
    assert pick(parsed, url, "bytes read").samples == approx([1.21 * GIB])
    transfer = pick(parsed, url, "transfer/s")
    assert (transfer.samples, transfer.unit, transfer.original_unit) == (
        approx([41.16 * MIB]),
        "bytes/s",
        "MB/s",
    )
    assert pick(parsed, url, "socket errors timeout").samples == [37.0]
    assert pick(parsed, url, "non-2xx/3xx responses").samples == [1024.0]
    requests = pick(parsed, url, "requests/s")
    assert (requests.samples, requests.direction) == ([8332.62], Direction.HIGHER)


def test_wrk_without_latency_distribution() -> None:
    parsed = parse_sample("wrk", "wrk/plain.txt")
    assert len(parsed.results) == 13
    assert pick(parsed, "http://127.0.0.1:8000/", "latency mean").samples == approx([635.91e-6])
    assert pick(parsed, "http://127.0.0.1:8000/", "latency stdev").samples == approx([0.89e-3])


def test_jmh_modes_params_forks_secondary_metrics_and_nan() -> None:
    parsed = parse_sample("jmh", "jmh/results.json")
    assert len(parsed.results) == 6
    name = "org.example.bench.ListBench.addAll"
    primary = pick(parsed, name, "throughput")
    assert primary.params == {"threads": 1, "size": "100", "kind": "array"}
    assert primary.samples == approx(
        [x * 1000 for x in (1501.25, 1519.5, 1551.0, 1499.1, 1521.2, 1548.69)]
    )
    assert (primary.unit, primary.original_unit, primary.direction) == (
        "1/s",
        "ops/ms",
        Direction.HIGHER,
    )
    assert primary.extra["samples_per_fork"] == [3, 3]
    assert primary.extra["score_error"] == 41.2031
    alloc = pick(parsed, name, "gc.alloc.rate")
    assert alloc.samples[0] == pytest.approx(805.0 * MIB)
    assert (alloc.unit, alloc.original_unit) == ("bytes/s", "MB/sec")
    norm = pick(parsed, name, "gc.alloc.rate.norm")
    assert len(norm.samples) == 5 and norm.extra["dropped_samples"] == ["nan"]
    assert norm.extra["score_error"] is None
    average = pick(parsed, "org.example.bench.ListBench.get", "average time")
    assert average.params == {"threads": 4}
    assert average.samples == approx([12.0e-9, 12.5e-9, 12.5e-9, 13.0e-9])
    sample = pick(parsed, "org.example.bench.ListBench.get", "sample time")
    assert len(sample.samples) == 13
    assert sorted(sample.samples)[-1] == pytest.approx(0.00005e-3)
    assert parsed.environment["jdkVersion"] == "17.0.9"


def test_criterion_target_directory() -> None:
    parsed = parse_sample("criterion", "criterion/target")
    # The stale "base" measurements are not results; only each benchmark's "new" ones.
    assert len(parsed.results) == 3
    fib = pick(parsed, "fib", "time")
    assert fib.params == {"input": 20}
    assert len(fib.samples) == 10
    assert fib.samples[:2] == approx([26000e-9, 26000.75e-9])
    assert fib.extra["estimates_s"]["mean"]["point"] == pytest.approx(26100e-9)
    copy_time = pick(parsed, "copy/memcpy", "time")
    assert copy_time.samples == approx([512e-9] * 10)
    throughput = pick(parsed, "copy/memcpy", "throughput")
    assert (throughput.unit, throughput.direction) == ("bytes/s", Direction.HIGHER)
    assert throughput.samples == approx([2e9] * 10)


def test_criterion_single_sample_file_reads_its_siblings() -> None:
    parsed = parse_sample("criterion", "criterion/target/criterion/fib/20/new/sample.json")
    (result,) = parsed.results
    assert (result.benchmark, result.params, len(result.samples)) == ("fib", {"input": 20}, 10)
    assert "estimates_s" in result.extra


def test_criterion_console_output() -> None:
    parsed = parse_sample("criterion", "criterion/console.txt")
    assert len(parsed.results) == 5
    fib = pick(parsed, "fib 20", "time")
    assert (fib.samples, fib.original_unit) == (approx([25.843e-6]), "µs")
    assert fib.extra["interval"] == [25.736, 25.962]
    copy_rate = pick(parsed, "copy/memcpy/1024", "throughput")
    assert copy_rate.samples == approx([19.449 * GIB])
    long_name = "a_rather_long_group_name/with_a_long_function_name/65536"
    assert pick(parsed, long_name, "time").samples == approx([1.2102e-3])
    elements = pick(parsed, long_name, "throughput")
    assert (elements.samples, elements.unit) == (approx([54.152e6]), "1/s")


def test_asv_results_directory() -> None:
    parsed = parse_sample("asv", "asv/results")
    assert len(parsed.results) == 8
    keys = pick(parsed, "benchmarks.TimeSuite.time_keys", "time")
    assert len(keys.samples) == 10 and keys.samples[0] == 1.5e-06
    assert keys.extra["stats_number"] == 5000
    fast = pick(parsed, "benchmarks.TimeSuite.time_sort", "time", n=10, kind="random")
    assert fast.samples == [2.1e-07]
    assert pick(
        parsed, "benchmarks.TimeSuite.time_sort", "time", n=1000, kind="random"
    ).samples == [8.4e-05]
    infinite = pick(parsed, "benchmarks.TimeSuite.time_sort", "time", n=1000, kind="sorted")
    assert infinite.samples == [] and infinite.extra["dropped_samples"] == ["inf"]
    memory = pick(parsed, "benchmarks.MemSuite.mem_list", "memory")
    assert (memory.samples, memory.unit) == ([2104.0], "bytes")
    track = pick(parsed, "benchmarks.track_queue_depth", "value")
    assert (track.samples, track.unit) == ([42.0], "items")
    broken = pick(parsed, "benchmarks.time_broken", "time")
    assert broken.samples == [] and broken.extra["failed"] is True
    assert parsed.source is not None
    assert parsed.source.commit == "4f1c2a9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
    assert parsed.environment["machine"]["cpu"] == "AMD EPYC 7763 64-Core Processor"


def test_k6_summary_export() -> None:
    parsed = parse_sample("k6", "k6/summary-export.json")
    assert len(parsed.results) == 33
    p95 = pick_exact(parsed, "http_req_duration", "p(95)", {})
    assert (p95.samples, p95.unit, p95.original_unit) == (approx([0.05177]), "s", "ms")
    expected = pick(parsed, "http_req_duration", "avg", expected_response="true")
    assert expected.samples == approx([0.0239])
    received = pick(parsed, "data_received", "rate")
    assert (received.unit, received.direction) == ("bytes/s", Direction.HIGHER)
    requests = pick(parsed, "http_reqs", "rate")
    assert (requests.samples, requests.unit) == ([39.8826], "1/s")
    failed = pick(parsed, "http_req_failed", "value")
    assert failed.direction == Direction.LOWER
    assert pick(parsed, "checks", "value").direction == Direction.HIGHER
    assert pick(parsed, "checks", "fails").direction == Direction.LOWER
    assert pick(parsed, "http_req_failed", "fails").direction == Direction.HIGHER
    assert parsed.environment["checks"] == {"::status is 200": {"passes": 1180, "fails": 20}}


def test_k6_handle_summary_data() -> None:
    parsed = parse_sample("k6", "k6/handle-summary.json")
    assert len(parsed.results) == 28
    duration = pick_exact(parsed, "http_req_duration", "p(95)", {})
    assert duration.samples == approx([0.18075])
    assert duration.extra["thresholds"] == {"p(95)<200": {"ok": True}}
    assert pick(parsed, "cart_latency", "avg").samples == approx([0.0125])
    items = pick(parsed, "cart_items", "avg")
    assert (items.samples, items.unit) == ([3.2], "")
    assert pick(parsed, "data_received", "count").unit == "bytes"
    assert parsed.environment["checks"]["::login::token present"] == {"passes": 98, "fails": 2}
    assert parsed.environment["state"]["testRunDurationMs"] == 30012.4458


def test_grpc_scenario_result() -> None:
    parsed = parse_sample("grpc-scenario", "grpc-scenario/scenario_result.json")
    assert len(parsed.results) == 26
    name = "cpp_protobuf_sync_unary_qps_unconstrained_secure"
    qps = pick(parsed, name, "qps")
    assert (qps.samples, qps.unit, qps.direction) == ([104107.25], "1/s", Direction.HIGHER)
    assert qps.extra["request_results"] == {"0": 6146, "14": 215}
    latency = pick(parsed, name, "latency99")
    assert (latency.samples, latency.unit, latency.original_unit) == (
        approx([3045678.5e-9]),
        "s",
        "ns",
    )
    assert pick(parsed, name, "serverCpuUsage").unit == "%"
    assert pick(parsed, name, "client timeUser").samples == [21.5, 20.9]
    assert pick(parsed, name, "server cqPollCount").samples == [4210.0]
    assert parsed.environment["scenario"]["benchmarkSeconds"] == 30


def test_bencher_metric_format() -> None:
    parsed = parse_sample("bencher", "bencher/bmf.json")
    assert len(parsed.results) == 6
    small = pick(parsed, "bench_adder::add_small", "latency")
    assert (small.samples, small.unit, small.original_unit) == (approx([88.5e-9]), "s", "ns")
    assert small.extra == {"lower_value": 87.2, "upper_value": 90.1}
    throughput = pick(parsed, "bench_adder::add_large", "throughput")
    assert (throughput.unit, throughput.direction) == ("1/s", Direction.HIGHER)
    assert pick(parsed, "binary", "file-size").samples == [4823040.0]
    assert pick(parsed, "build", "build-time").samples == [87.25]
    custom = pick(parsed, "parser::json", "custom-score")
    assert (custom.samples, custom.unit, custom.extra) == ([12.0], "", {"lower_value": 11.0})


def test_github_action_benchmark_custom_json() -> None:
    parsed = parse_sample("github-action-benchmark", "github-action-benchmark/custom.json")
    assert len(parsed.results) == 4
    small = pick(parsed, "parse/small.json", "value")
    assert (small.samples, small.unit) == (approx([0.00125]), "s")
    assert small.extra == {"range": "± 0.05", "extra": "100 iterations"}
    throughput = pick(parsed, "server throughput", "value")
    assert (throughput.samples, throughput.unit, throughput.direction) == (
        [9850.0],
        "1/s",
        Direction.HIGHER,
    )
    assert pick(parsed, "bundle size", "value").samples == approx([340500.0])


def test_benchmarkdotnet_full_export() -> None:
    parsed = parse_sample("benchmarkdotnet", "benchmarkdotnet/full.json")
    assert len(parsed.results) == 15
    sha = pick(parsed, "MyBench.Hashing.Sha256", "time", N=1000)
    assert sha.samples == approx([4200e-9 * f for f in (1.0, 1.01, 0.99, 1.02, 0.98)])
    assert sha.warmup_samples == approx([4200e-9 * f for f in (1.21, 1.08, 1.02)])
    allocated = pick(parsed, "MyBench.Hashing.Sha256", "allocated per operation", N=1000)
    assert (allocated.samples, allocated.unit) == ([112.0], "bytes")
    gen0 = pick(parsed, "MyBench.Hashing.Md5", "gen0 collections per 1000 operations", N=1000)
    assert gen0.samples == approx([104 * 1000 / (262144 * 13)])
    assert len(pick(parsed, "MyBench.Hashing.Sha256", "time", N=10000).samples) == 5
    assert parsed.environment["BenchmarkDotNetVersion"] == "0.13.12"


def test_benchmarkdotnet_brief_export_falls_back_to_the_mean() -> None:
    parsed = parse_sample("benchmarkdotnet", "benchmarkdotnet/brief.json")
    assert len(parsed.results) == 5
    time = pick(parsed, "MyBench.Hashing.Sha256", "time")
    assert time.samples == approx([4200e-9])
    assert time.extra["samples_from"] == "Statistics.Mean"


def test_catch2_console() -> None:
    parsed = parse_sample("catch2", "catch2/console.txt")
    assert len(parsed.results) == 3
    fib = pick(parsed, "Fibonacci 20", "mean time")
    assert (fib.samples, fib.unit) == (approx([32.2564e-6]), "s")
    assert fib.extra["samples"] == 100 and fib.extra["iterations"] == 1
    assert fib.extra["std_dev_s"] == pytest.approx(2.20245e-6)
    vector = pick(parsed, "push_back 1000 ints", "mean time")
    assert vector.samples == approx([578.213e-9])
    assert vector.extra["iterations"] == 42


def test_benchmarkjs_output() -> None:
    parsed = parse_sample("benchmarkjs", "benchmarkjs/output.txt")
    assert len(parsed.results) == 3
    regexp = pick(parsed, "RegExp#test", "throughput")
    assert (regexp.samples, regexp.unit, regexp.direction) == (
        [43525674.0],
        "1/s",
        Direction.HIGHER,
    )
    assert regexp.extra == {"relative_margin_of_error_percent": 0.66, "runs_sampled": 91}


def test_libtest_output() -> None:
    parsed = parse_sample("libtest", "libtest/output.txt")
    assert len(parsed.results) == 4
    large = pick(parsed, "bench_parse_large", "time")
    assert (large.samples, large.unit) == (approx([1052312e-9]), "s")
    assert large.extra["spread_s"] == pytest.approx(48210e-9)
    assert pick(parsed, "bench_checksum", "time").samples == approx([4096.25e-9])
    rate = pick(parsed, "bench_checksum", "throughput")
    assert (rate.samples, rate.unit) == (approx([250e6]), "bytes/s")


def test_vitest_bench_json() -> None:
    parsed = parse_sample("vitest", "vitest/bench.json")
    assert len(parsed.results) == 6
    native = pick(parsed, "bench/sort.bench.ts > sorting 1k numbers > Array.prototype.sort", "time")
    assert native.samples == approx(
        [x * 1e-3 for x in (0.0712, 0.0698, 0.0731, 0.0705, 0.0702, 0.0745)]
    )
    radix = pick(parsed, "bench/sort.bench.ts > sorting 1k numbers > radix sort", "time")
    assert radix.samples == approx([0.024925e-3]) and radix.extra["sampleCount"] == 20060
    hz = pick(parsed, "bench/sort.bench.ts > sorting 1k numbers > radix sort", "throughput")
    assert (hz.samples, hz.direction) == ([40120.5], Direction.HIGHER)
    assert len(pick(parsed, "bench/parse.bench.ts > JSON.parse", "time").samples) == 3


def test_pyperf_reads_gzip_compressed_files(tmp_path: Path) -> None:
    compressed = tmp_path / "suite.json.gz"
    compressed.write_bytes(gzip.compress((DATA / "pyperf" / "suite.json").read_bytes()))
    assert detect(InputSource.from_path(compressed)).name == "pyperf"
    assert len(parse_file("pyperf", compressed).results) == 4


def test_generic_csv_with_semicolons_and_a_direction_column(tmp_path: Path) -> None:
    data = tmp_path / "export.csv"
    data.write_text(
        "benchmark;metric;unit;value;direction\nindex;hits;1/s;120;higher\nindex;hits;1/s;130;higher\n"
    )
    assert detect(InputSource.from_path(data)).name == "generic-csv"
    (result,) = parse_file("generic-csv", data).results
    assert (result.samples, result.direction) == ([120.0, 130.0], Direction.HIGHER)


def test_the_adapter_example_in_the_documentation_works() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "adapters.md").read_text()
    code = (
        docs.split("## Writing your own adapter", 1)[1].split("```python\n", 1)[1].split("```")[0]
    )
    namespace: dict = {}
    exec(compile(code, "docs/adapters.md", "exec"), namespace)
    adapter = namespace["QueueBenchAdapter"]()
    source = InputSource.from_text("queuebench 1.0\nfanout: 1200 msg/s\ndirect: 5300 msg/s\n")
    assert adapter.sniff(source)
    results = adapter.parse(source).results
    assert [(r.benchmark, r.samples, r.unit) for r in results] == [
        ("fanout", [1200.0], "msg/s"),
        ("direct", [5300.0], "msg/s"),
    ]


def _text_samples() -> list[tuple[str, Path]]:
    return [
        (format_name, path)
        for format_name, path in file_samples()
        if path.suffix in {".txt", ".csv"}
    ]


@pytest.mark.parametrize("sample", _text_samples(), ids=sample_id)
def test_text_formats_read_windows_line_endings_the_same(sample: tuple[str, Path]) -> None:
    format_name, path = sample
    unix = parse_file(format_name, path)
    windows = get_adapter(format_name).parse(
        InputSource(path=None, data=path.read_bytes().replace(b"\n", b"\r\n"))
    )
    assert [r.model_dump() for r in windows.results] == [r.model_dump() for r in unix.results]


def test_json_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    with_bom = tmp_path / "report-full.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (DATA / "benchmarkdotnet" / "full.json").read_bytes())
    assert detect(InputSource.from_path(with_bom)).name == "benchmarkdotnet"
    assert len(parse_file("benchmarkdotnet", with_bom).results) == 15


def test_wrk_runs_printed_one_after_another_stay_apart() -> None:
    both = (DATA / "wrk" / "plain.txt").read_text() + (
        DATA / "wrk" / "latency-errors.txt"
    ).read_text()
    parsed = get_adapter("wrk").parse(InputSource.from_text(both))
    assert len(parsed.results) == 13 + 22
    assert pick(parsed, "http://127.0.0.1:8000/", "requests/s").samples == [16526.27]
    assert pick(parsed, "http://10.0.0.5:8080/api/items", "requests/s").params["threads"] == 4


def test_pyperf_peak_memory_shared_by_every_run_counts_for_each(tmp_path: Path) -> None:
    # pyperf moves metadata every run shares into the benchmark's own: two workers with the
    # same peak wrote it there only (a real timeit run found it), and it was lost.
    document = {
        "version": "1.0",
        "metadata": {"perf_version": "2.8.1"},
        "benchmarks": [
            {
                "metadata": {"name": "timeit", "unit": "second", "mem_max_rss": 9_000_000},
                "runs": [
                    {"values": [1.0, 2.0], "metadata": {"loops": 4}},
                    {"values": [1.5, 2.5], "metadata": {"loops": 4}},
                ],
            }
        ],
    }
    path = tmp_path / "pyperf.json"
    path.write_text(json.dumps(document))
    parsed = parse_file("pyperf", path)
    assert pick(parsed, "timeit", "max RSS").samples == [9_000_000.0, 9_000_000.0]
    assert pick(parsed, "timeit", "time").samples == [1.0, 2.0, 1.5, 2.5]
