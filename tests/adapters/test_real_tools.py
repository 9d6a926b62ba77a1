"""The real tools, run on tiny benchmarks, and what their output turns into.

Each test runs the tool for a second or two, reads what it wrote with the tool's own
format (JSON loaded with the json module, text split by hand), and checks the adapter kept
every sample with the right value. A missing tool skips (see tools.py).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from perffarm.adapters.base import InputSource
from perffarm.adapters.registry import detect, parse_text
from tests.adapters.helpers import parse_file, pick
from tests.adapters.tools import require_file, require_module, require_program

TOOL_TIMEOUT = 120


def _run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, *, may_fail: bool = False
) -> str:
    # The tools run outside this test session: xdist's worker variables would make a nested
    # pytest (pytest-benchmark) believe it is a distributed worker and skip benchmarking.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    completed = subprocess.run(
        command,
        cwd=cwd,
        env={**inherited, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    assert may_fail or completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_pytest_benchmark_json(tmp_path: Path) -> None:
    require_module("pytest_benchmark")
    (tmp_path / "test_tiny.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.parametrize('size', [10, 100])\n"
        "def test_sort(benchmark, size):\n"
        "    benchmark.extra_info['size'] = size\n"
        "    benchmark(sorted, list(range(size, 0, -1)))\n"
    )
    output = tmp_path / "out.json"
    _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "--rootdir", str(tmp_path), "test_tiny.py", f"--benchmark-json={output}",
         "--benchmark-min-rounds=5", "--benchmark-max-time=0.02"],
        tmp_path,
    )  # fmt: skip
    written = json.loads(output.read_text())
    assert detect(InputSource.from_path(output)).name == "pytest-benchmark"
    parsed = parse_file("pytest-benchmark", output)
    assert len(parsed.results) == 2 * len(written["benchmarks"]) == 4
    for entry in written["benchmarks"]:
        time = pick(parsed, "test_tiny.py::test_sort", "time", size=entry["params"]["size"])
        assert time.samples == entry["stats"]["data"]
        assert len(time.samples) == entry["stats"]["rounds"]
        assert time.extra["extra_info"] == {"size": entry["params"]["size"]}


def test_pyperf_json(tmp_path: Path) -> None:
    require_module("pyperf")
    output = tmp_path / "timeit.json"
    _run(
        [sys.executable, "-m", "pyperf", "timeit", "-q", "-p", "2", "-n", "3", "-w", "1",
         "-l", "10", "-o", str(output), "sum(range(50))"],
        tmp_path,
    )  # fmt: skip
    written = json.loads(output.read_text())
    runs = written["benchmarks"][0]["runs"]
    values = [value for run in runs for value in run.get("values", [])]
    warmups = [pair[1] for run in runs for pair in run.get("warmups", [])]
    parsed = parse_file("pyperf", output)
    time = pick(parsed, "timeit", "time")
    assert time.samples == values and len(values) == 6
    assert time.warmup_samples == warmups
    assert len(pick(parsed, "timeit", "max RSS").samples) == len(runs)
    assert parsed.environment["perf_version"]


def test_hyperfine_json_with_parameters(tmp_path: Path) -> None:
    hyperfine = require_program("hyperfine")
    output = tmp_path / "hyperfine.json"
    _run(
        [hyperfine, "--runs", "3", "--warmup", "1", "-N", "-L", "n", "1,2",
         "sleep 0.00{n}", "--export-json", str(output)],
        tmp_path,
    )  # fmt: skip
    written = json.loads(output.read_text())["results"]
    parsed = parse_file("hyperfine", output)
    per_command = 3 + ("memory_usage_byte" in written[0])
    assert len(parsed.results) == per_command * 2
    for entry in written:
        level = int(entry["parameters"]["n"])
        wall = pick(parsed, "sleep 0.00{n}", "wall time", n=level)
        assert wall.samples == entry["times"] and len(wall.samples) == 3
        assert wall.extra["exit_codes"] == [0, 0, 0]
        assert pick(parsed, "sleep 0.00{n}", "user time", n=level).samples == [entry["user"]]


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello" if self.path == "/" else b"missing"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # Load tools close their connections mid-request when their time is up: that is
        # how they stop, not an error of the tool under test.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def http_server() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wrk_output_with_latency_and_non_2xx(http_server: str, tmp_path: Path) -> None:
    wrk = require_program("wrk")
    url = f"{http_server}/missing"
    output = _run([wrk, "-t1", "-c2", "-d1s", "--latency", url], tmp_path)
    parsed = parse_text("auto", output)
    requests_per_second = float(re.search(r"Requests/sec:\s+(\S+)", output).group(1))
    non_2xx = float(re.search(r"Non-2xx or 3xx responses: (\d+)", output).group(1))
    assert pick(parsed, url, "requests/s").samples == [requests_per_second]
    assert pick(parsed, url, "non-2xx/3xx responses").samples == [non_2xx]
    assert pick(parsed, url, "latency p99").unit == "s"
    assert pick(parsed, url, "latency mean").params == {
        "duration": "1s",
        "threads": 1,
        "connections": 2,
    }
    socket_errors = 4 if "Socket errors" in output else 0
    assert len(parsed.results) == 8 + 4 + 3 + 1 + socket_errors + 2


_GO_BENCHMARK = """package tiny

import (
\t"fmt"
\t"testing"
)

func fib(n int) int {
\tif n < 2 {
\t\treturn n
\t}
\treturn fib(n-1) + fib(n-2)
}

func BenchmarkFib(b *testing.B) {
\tfor _, n := range []int{5, 10} {
\t\tb.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
\t\t\tb.SetBytes(64)
\t\t\tb.ReportAllocs()
\t\t\tfor i := 0; i < b.N; i++ {
\t\t\t\t_ = fmt.Sprint(fib(n))
\t\t\t}
\t\t\tb.ReportMetric(1.5, "widgets/op")
\t\t})
\t}
}
"""


def test_go_test_bench(tmp_path: Path) -> None:
    go = require_program("go")
    (tmp_path / "go.mod").write_text("module example.com/tiny\n\ngo 1.18\n")
    (tmp_path / "tiny_test.go").write_text(_GO_BENCHMARK)
    output = _run(
        [go, "test", "-run", "^$", "-bench", ".", "-count", "3", "-benchtime", "500x"],
        tmp_path,
        env={"GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"},
    )
    parsed = parse_text("auto", output)
    lines = [line.split() for line in output.splitlines() if line.startswith("BenchmarkFib/n=5")]
    assert len(lines) == 3
    time = pick(parsed, "BenchmarkFib", "time", n=5)
    assert time.samples == pytest.approx([float(line[2]) * 1e-9 for line in lines], rel=1e-12)
    assert len(pick(parsed, "BenchmarkFib", "throughput", n=10).samples) == 3
    assert pick(parsed, "BenchmarkFib", "widgets/op", n=10).samples == [1.5, 1.5, 1.5]
    assert len(parsed.results) == 2 * 5
    assert parsed.environment["packages"] == ["example.com/tiny"]
    assert parsed.environment["goos"]


_GOOGLE_BENCHMARK = """#include <benchmark/benchmark.h>
#include <vector>

static void BM_fill(benchmark::State& state) {
  for (auto _ : state) {
    std::vector<int> v(state.range(0), 1);
    benchmark::DoNotOptimize(v.data());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0) * sizeof(int));
  state.counters["widgets"] = 3;
}
BENCHMARK(BM_fill)->Arg(8)->Arg(64);
BENCHMARK_MAIN();
"""


def test_google_benchmark_json(tmp_path: Path) -> None:
    compiler = require_program("g++")
    require_file(Path("/usr/include/benchmark/benchmark.h"), "libbenchmark-dev")
    (tmp_path / "bench.cc").write_text(_GOOGLE_BENCHMARK)
    _run([compiler, "-O1", "bench.cc", "-o", "bench", "-lbenchmark", "-lpthread"], tmp_path)
    output = tmp_path / "out.json"
    _run(
        ["./bench", "--benchmark_repetitions=3", "--benchmark_min_time=0.01",
         f"--benchmark_out={output}", "--benchmark_out_format=json"],
        tmp_path,
    )  # fmt: skip
    written = json.loads(output.read_text())
    iterations = [
        entry
        for entry in written["benchmarks"]
        if entry["run_name"] == "BM_fill/8" and entry["run_type"] == "iteration"
    ]
    parsed = parse_file("google-benchmark", output)
    assert len(parsed.results) == 2 * 4
    real = pick(parsed, "BM_fill/8", "real_time")
    assert real.samples == pytest.approx([e["real_time"] * 1e-9 for e in iterations], rel=1e-12)
    assert len(real.samples) == 3
    assert set(real.extra["aggregates"]) >= {"mean", "median", "stddev"}
    rate = pick(parsed, "BM_fill/64", "bytes_per_second")
    assert rate.unit == "bytes/s" and all(math.isfinite(v) for v in rate.samples)
    assert pick(parsed, "BM_fill/8", "widgets").samples == [3.0, 3.0, 3.0]
    assert parsed.environment["num_cpus"] >= 1


_ASV_BENCHMARKS = """class TimeSort:
    params = ([10, 100], ["random", "sorted"])
    param_names = ["n", "kind"]

    def setup(self, n, kind):
        self.data = list(range(n, 0, -1)) if kind == "random" else list(range(n))

    def time_sort(self, n, kind):
        sorted(self.data)


def time_sum():
    sum(range(100))


def mem_list():
    return [0] * 256


def track_answer():
    return 42


track_answer.unit = "answers"


def time_broken():
    raise RuntimeError("broken on purpose")
"""


def test_asv_results_of_a_real_run(tmp_path: Path) -> None:
    require_module("asv")
    git = require_program("git")
    asv = [sys.executable, "-m", "asv"]
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "__init__.py").write_text("")
    (tmp_path / "benchmarks" / "bench_tiny.py").write_text(_ASV_BENCHMARKS)
    (tmp_path / "asv.conf.json").write_text(
        json.dumps({"version": 1, "project": "tiny", "repo": ".", "environment_type": "existing",
                    "benchmark_dir": "benchmarks", "results_dir": "results"})
    )  # fmt: skip
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    _run([git, "init", "-q"], tmp_path)
    _run([git, "add", "-A"], tmp_path)
    _run([git, "commit", "-qm", "benchmarks"], tmp_path, env=identity)
    commit = _run([git, "rev-parse", "HEAD"], tmp_path).strip()
    _run([*asv, "machine", "--yes", "--machine", "testbox"], tmp_path, env={"HOME": str(tmp_path)})
    # --python=same runs in this interpreter; without --set-commit-hash asv saves nothing.
    _run(
        [*asv, "run", "--python=same", "--machine", "testbox", "--set-commit-hash", commit,
         "--record-samples", "-a", "repeat=3", "-a", "number=10", "-a", "warmup_time=0",
         "-a", "rounds=1"],
        tmp_path,
        env={"HOME": str(tmp_path)},
        may_fail=True,  # asv exits 2 because time_broken fails, which is part of the test
    )  # fmt: skip
    results_dir = tmp_path / "results"
    (result_file,) = [
        p for p in (results_dir / "testbox").glob("*.json") if p.name != "machine.json"
    ]
    written = json.loads(result_file.read_text())
    samples_column = written["result_columns"].index("samples")
    assert detect(InputSource.from_path(results_dir)).name == "asv"
    parsed = parse_file("asv", results_dir)
    assert len(parsed.results) == 4 + 4
    row = written["results"]["bench_tiny.TimeSort.time_sort"]
    for index, (n, kind) in enumerate(
        [(10, "random"), (10, "sorted"), (100, "random"), (100, "sorted")]
    ):
        result = pick(parsed, "bench_tiny.TimeSort.time_sort", "time", n=n, kind=kind)
        assert result.samples == row[samples_column][index] and len(result.samples) == 3
    assert pick(parsed, "bench_tiny.mem_list", "memory").unit == "bytes"
    answer = pick(parsed, "bench_tiny.track_answer", "value")
    assert (answer.samples, answer.unit) == ([42.0], "answers")
    assert pick(parsed, "bench_tiny.time_broken", "time").extra["failed"] is True
    assert parsed.source is not None and parsed.source.commit == commit
    assert parsed.environment["machine"]["machine"] == "testbox"
