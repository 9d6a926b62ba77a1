"""pgbench output: the summary, per-statement latencies (``-r``) and progress lines (``-P``).

Understands the wording of PostgreSQL 9.6 to 17: ``tps = N (without initial connection
time)`` (14+) as well as ``tps = N (including/excluding connections establishing)``
(older), failures columns (15+), and progress lines with epoch times
(``--progress-timestamp``) or seconds since the start. Latencies become seconds (pgbench
prints milliseconds; ``original_unit`` keeps ``ms``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import ClassVar

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.model import Direction, Result, Series

MS = 1e-3

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-nan"


@dataclass
class StatementLatency:
    """One line of ``-r`` output."""

    script: int  # 1-based script number (pgbench's "SQL script N"); 1 with a single script
    index: int  # 1-based position within the script
    latency_ms: float
    text: str
    failures: int | None = None
    retries: int | None = None


@dataclass
class ProgressPoint:
    """One ``progress:`` line; ``t`` is what pgbench printed (seconds, maybe epoch)."""

    t: float
    tps: float
    latency_ms: float | None = None
    stddev_ms: float | None = None
    failed: int | None = None
    lag_ms: float | None = None
    skipped: int | None = None
    line: int = 0


@dataclass
class PgbenchReport:
    """Everything one pgbench run printed, in pgbench's own units (ms)."""

    version: str | None = None
    transaction_type: str | None = None
    scale: int | None = None
    query_mode: str | None = None
    clients: int | None = None
    threads: int | None = None
    max_tries: int | None = None
    duration_s: float | None = None
    transactions_per_client: int | None = None
    transactions: int | None = None
    transactions_planned: int | None = None
    failed_transactions: int | None = None
    latency_average_ms: float | None = None
    latency_stddev_ms: float | None = None
    initial_connection_time_ms: float | None = None
    # tps without the time to connect (14+: "without initial connection time"; older:
    # "excluding connections establishing"): comparable across versions.
    tps: float | None = None
    tps_including_connections: float | None = None
    statements: list[StatementLatency] = field(default_factory=list)
    progress: list[ProgressPoint] = field(default_factory=list)
    aborted: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def has_summary(self) -> bool:
        return self.tps is not None

    @property
    def progress_is_epoch(self) -> bool:
        """True when progress times are Unix times (``--progress-timestamp``)."""
        return bool(self.progress) and self.progress[0].t > 1e8


_SUMMARY_INT = {
    "scaling factor": "scale",
    "number of clients": "clients",
    "number of threads": "threads",
    "maximum number of tries": "max_tries",
    "number of transactions per client": "transactions_per_client",
}
_KEY_VALUE = re.compile(r"^(?P<key>[a-z][a-z ]+?)\s*:\s*(?P<value>.*)$")
_LATENCY = re.compile(
    rf"^latency (?P<kind>average|stddev)\s*[=:]\s*(?P<value>{_NUMBER})\s*ms\b", re.IGNORECASE
)
_CONNECTION = re.compile(rf"^initial connection time\s*=\s*(?P<value>{_NUMBER})\s*ms")
_TPS = re.compile(rf"^tps\s*=\s*(?P<value>{_NUMBER})\s*(?:\((?P<note>[^)]*)\))?")
_PROCESSED = re.compile(r"^number of transactions actually processed:\s*(\d+)(?:/(\d+))?")
_FAILED = re.compile(r"^number of failed transactions:\s*(\d+)")
_DURATION = re.compile(rf"^duration:\s*(?P<value>{_NUMBER})\s*s")
_STATEMENT_HEADER = re.compile(r"^\s*(?:- )?statement latencies in milliseconds(?P<cols>.*):\s*$")
_SCRIPT_HEADER = re.compile(r"^SQL script (\d+):")
_STATEMENT = re.compile(rf"^\s+(?P<lat>{_NUMBER})\s+(?P<rest>.*)$")
_PROGRESS = re.compile(
    rf"^progress:\s*(?P<t>{_NUMBER})\s*s,\s*(?P<tps>{_NUMBER})\s*tps"
    rf"(?:,\s*lat\s*(?P<lat>{_NUMBER})\s*ms\s*stddev\s*(?P<stddev>{_NUMBER}))?"
    rf"(?P<rest>.*)$"
)
_VERSION = re.compile(r"^pgbench \((?P<version>.+)\)\s*$")


def _float(text: str, lineno: int, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise AdapterError(f"line {lineno}: {what} is not a number: {text!r}") from None


def _int(text: str, lineno: int, what: str) -> int:
    try:
        return int(text.strip().split()[0])
    except (ValueError, IndexError):
        raise AdapterError(f"line {lineno}: {what} is not a whole number: {text!r}") from None


def parse_pgbench_output(text: str) -> PgbenchReport:
    """Parse pgbench's stdout and stderr (in any interleaving); raise AdapterError naming
    the line when a line pgbench wrote has a value that cannot be read."""
    report = PgbenchReport()
    script = 1
    statement_cols: list[str] | None = None
    statement_index = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            statement_cols = None
            continue

        if statement_cols is not None:
            match = _STATEMENT.match(line)
            if match:
                statement_index += 1
                report.statements.append(
                    _statement(match, statement_cols, script, statement_index, lineno)
                )
                continue
            statement_cols = None

        if match := _PROGRESS.match(stripped):
            report.progress.append(_progress(match, lineno))
            continue
        if match := _VERSION.match(stripped):
            report.version = match["version"]
            continue
        if match := _STATEMENT_HEADER.match(line):
            cols = match["cols"]
            statement_cols = ["latency"]
            if "failures" in cols:
                statement_cols.append("failures")
            if "retries" in cols:
                statement_cols.append("retries")
            statement_index = 0
            continue
        if match := _SCRIPT_HEADER.match(stripped):
            script = int(match[1])
            continue
        if stripped.startswith("transaction type:"):
            report.transaction_type = stripped.split(":", 1)[1].strip()
            continue
        if stripped.startswith("query mode:"):
            report.query_mode = stripped.split(":", 1)[1].strip()
            continue
        if match := _PROCESSED.match(stripped):
            report.transactions = int(match[1])
            if match[2]:
                report.transactions_planned = int(match[2])
            continue
        if match := _FAILED.match(stripped):
            report.failed_transactions = int(match[1])
            continue
        if match := _DURATION.match(stripped):
            report.duration_s = _float(match["value"], lineno, "duration")
            continue
        if match := _LATENCY.match(stripped):
            value = _float(match["value"], lineno, f"latency {match['kind']}")
            if match["kind"].lower() == "average":
                report.latency_average_ms = value
            else:
                report.latency_stddev_ms = value
            continue
        if match := _CONNECTION.match(stripped):
            report.initial_connection_time_ms = _float(match["value"], lineno, "connection time")
            continue
        if match := _TPS.match(stripped):
            value = _float(match["value"], lineno, "tps")
            note = (match["note"] or "").lower()
            if "including" in note:
                report.tps_including_connections = value
            else:
                # "without initial connection time", "excluding connections
                # establishing", or no note at all.
                report.tps = value
            continue
        if stripped.startswith("tps") or stripped.startswith("latency average"):
            raise AdapterError(f"line {lineno}: cannot read pgbench summary line: {stripped!r}")
        lower = stripped.lower()
        if "aborted" in lower and ("run was aborted" in lower or "client" in lower):
            report.aborted = True
        if lower.startswith(("pgbench: error", "pgbench: fatal")) or "ERROR:" in stripped:
            report.errors.append(stripped)
            continue
        if match := _KEY_VALUE.match(stripped):
            attr = _SUMMARY_INT.get(match["key"])
            if attr:
                setattr(report, attr, _int(match["value"], lineno, match["key"]))
            continue
    if report.tps is None and report.tps_including_connections is not None:
        report.tps = report.tps_including_connections
    return report


def _statement(
    match: re.Match[str], cols: list[str], script: int, index: int, lineno: int
) -> StatementLatency:
    rest = match["rest"]
    failures = retries = None
    for col in cols[1:]:
        parts = rest.lstrip().split(None, 1)
        if not parts:
            raise AdapterError(f"line {lineno}: statement line lacks its {col} column")
        value = _int(parts[0], lineno, col)
        rest = parts[1] if len(parts) > 1 else ""
        if col == "failures":
            failures = value
        else:
            retries = value
    return StatementLatency(
        script=script,
        index=index,
        latency_ms=_float(match["lat"], lineno, "statement latency"),
        text=" ".join(rest.split()),
        failures=failures,
        retries=retries,
    )


_PROGRESS_EXTRA = {
    "failed": re.compile(r",\s*(\d+)\s*failed"),
    "skipped": re.compile(r",\s*(\d+)\s*skipped"),
    "lag": re.compile(rf",\s*lag\s*({_NUMBER})\s*ms"),
}


def _progress(match: re.Match[str], lineno: int) -> ProgressPoint:
    point = ProgressPoint(
        t=_float(match["t"], lineno, "progress time"),
        tps=_float(match["tps"], lineno, "progress tps"),
        line=lineno,
    )
    if match["lat"] is not None:
        point.latency_ms = _float(match["lat"], lineno, "progress latency")
        point.stddev_ms = _float(match["stddev"], lineno, "progress stddev")
    rest = match["rest"] or ""
    if found := _PROGRESS_EXTRA["failed"].search(rest):
        point.failed = int(found[1])
    if found := _PROGRESS_EXTRA["skipped"].search(rest):
        point.skipped = int(found[1])
    if found := _PROGRESS_EXTRA["lag"].search(rest):
        point.lag_ms = _float(found[1], lineno, "progress lag")
    return point


_MODES = {
    "<builtin: TPC-B (sort of)>": "read-write",
    "<builtin: select only>": "read-only",
    "<builtin: simple update>": "simple-update",
}


def mode_of(transaction_type: str | None) -> str | None:
    """perffarm's mode name for pgbench's ``transaction type`` (custom scripts: the path)."""
    if transaction_type is None:
        return None
    return _MODES.get(transaction_type, transaction_type)


class PgbenchAdapter(Adapter):
    """Reads one pgbench run's output (stdout, or stdout and stderr together)."""

    name: ClassVar[str] = "pgbench"
    description: ClassVar[str] = "pgbench summary, -r statement latencies and -P progress"

    def sniff(self, source: InputSource) -> bool:
        if source.is_directory:
            return False
        head = source.data[:20000].decode("utf-8", errors="replace")
        if "number of transactions actually processed:" in head and "transaction type:" in head:
            return True
        return bool(re.search(r"^progress: [\d.]+ s, [\d.]+ tps", head, re.MULTILINE))

    def parse(self, source: InputSource) -> Parsed:
        report = parse_pgbench_output(source.text())
        if not report.has_summary and not report.progress:
            raise AdapterError(
                "line 1: no pgbench summary (tps = ...) and no progress lines found"
                + (f"; pgbench said: {report.errors[0]}" if report.errors else "")
            )
        params: dict[str, str | int] = {}
        if (mode := mode_of(report.transaction_type)) is not None:
            params["mode"] = mode
        for key, value in (
            ("clients", report.clients),
            ("jobs", report.threads),
            ("scale", report.scale),
        ):
            if value is not None:
                params[key] = value
        if report.query_mode and report.query_mode != "simple":
            params["protocol"] = report.query_mode
        parsed = Parsed()
        parsed.results = report_results(report, params)
        parsed.series = report_series(report)
        parsed.environment = {
            key: value
            for key, value in (
                ("version", report.version),
                ("duration_s", report.duration_s),
                ("transactions", report.transactions),
            )
            if value is not None
        }
        return parsed


def report_results(
    report: PgbenchReport, params: dict[str, str | int], benchmark: str = "pgbench"
) -> list[Result]:
    """The results of one run (one sample each), in normalised units."""
    results: list[Result] = []

    def add(
        metric: str,
        value: float | None,
        unit: str,
        direction: Direction,
        original: str | None = None,
        extra_params: dict | None = None,
    ) -> None:
        if value is None or not math.isfinite(value):
            return
        results.append(
            Result(
                benchmark=benchmark,
                params={**params, **(extra_params or {})},
                metric=metric,
                unit=unit,
                direction=direction,
                samples=[value],
                original_unit=original,
            )
        )

    add("tps", report.tps, "1/s", Direction.HIGHER)
    add("latency_average", _seconds(report.latency_average_ms), "s", Direction.LOWER, "ms")
    add("latency_stddev", _seconds(report.latency_stddev_ms), "s", Direction.LOWER, "ms")
    add("failed_transactions", report.failed_transactions, "count", Direction.LOWER)
    add(
        "initial_connection_time",
        _seconds(report.initial_connection_time_ms),
        "s",
        Direction.LOWER,
        "ms",
    )
    multi = len({s.script for s in report.statements}) > 1
    for statement in report.statements:
        extra: dict[str, str | int] = {
            "statement": statement.text,
            "statement_index": statement.index,
        }
        if multi:
            extra["script"] = statement.script
        add("statement_latency", ms_to_s(statement.latency_ms), "s", Direction.LOWER, "ms", extra)
    return results


def report_series(report: PgbenchReport, suffix: str = "") -> list[Series]:
    """The progress lines as series of tps and latency; times as pgbench printed them."""
    # An interval without a finished transaction prints "lat nan ms" on some versions.
    points = [p for p in report.progress if math.isfinite(p.tps)]
    if not points:
        return []
    series = [
        Series(
            name=f"pgbench.tps{suffix}",
            unit="1/s",
            t=[p.t for p in points],
            values=[p.tps for p in points],
        )
    ]
    timed = [p for p in points if p.latency_ms is not None and math.isfinite(p.latency_ms)]
    if timed:
        series.append(
            Series(
                name=f"pgbench.latency{suffix}",
                unit="s",
                t=[p.t for p in timed],
                values=[ms_to_s(p.latency_ms) for p in timed],  # type: ignore[misc]
            )
        )
    return series


def ms_to_s(ms: float | None) -> float | None:
    """Milliseconds as printed by pgbench to seconds, without float noise (0.407 -> 0.000407)."""
    return None if ms is None else round(ms * MS, 12)


_seconds = ms_to_s
