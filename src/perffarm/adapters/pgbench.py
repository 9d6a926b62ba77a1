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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from perffarm.adapters.base import Adapter, AdapterError, InputSource, Parsed
from perffarm.model import Direction, ParamValue, Result, Series

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
SCRIPT_PREFIX = "script:"
_MULTIPLE_SCRIPTS = "multiple scripts"


def mode_of(transaction_type: str | None) -> str | None:
    """perffarm's mode name for pgbench's ``transaction type``: the measurement's own
    (``read-write``, ``read-only``, ``simple-update``, ``script:PATH`` with the path as
    pgbench printed it); ``multiple scripts`` and unknown built-ins as printed."""
    if transaction_type is None:
        return None
    if transaction_type in _MODES:
        return _MODES[transaction_type]
    if transaction_type.startswith("<builtin:") or transaction_type == _MULTIPLE_SCRIPTS:
        return transaction_type
    return SCRIPT_PREFIX + transaction_type


# -- the one table: what a pgbench run yields, for the adapter and the measurement ----------


@dataclass(frozen=True)
class PgbenchMetric:
    """One quantity pgbench prints, as perffarm records it (normalised unit)."""

    name: str
    unit: str
    direction: Direction
    original_unit: str | None = None


TPS = PgbenchMetric("tps", "1/s", Direction.HIGHER)
LATENCY_AVERAGE = PgbenchMetric("latency_average", "s", Direction.LOWER, "ms")
LATENCY_STDDEV = PgbenchMetric("latency_stddev", "s", Direction.LOWER, "ms")
FAILED_TRANSACTIONS = PgbenchMetric("failed_transactions", "count", Direction.LOWER)
INITIAL_CONNECTION_TIME = PgbenchMetric("initial_connection_time", "s", Direction.LOWER, "ms")
STATEMENT_LATENCY = PgbenchMetric("statement_latency", "s", Direction.LOWER, "ms")

# The summary's quantities and how to read each from a report; None when this pgbench does
# not print it (failures before 15, the connection time before 14).
SUMMARY_METRICS: tuple[tuple[PgbenchMetric, Callable[[PgbenchReport], float | None]], ...] = (
    (TPS, lambda report: report.tps),
    (LATENCY_AVERAGE, lambda report: ms_to_s(report.latency_average_ms)),
    (LATENCY_STDDEV, lambda report: ms_to_s(report.latency_stddev_ms)),
    (FAILED_TRANSACTIONS, lambda report: report.failed_transactions),
    (INITIAL_CONNECTION_TIME, lambda report: ms_to_s(report.initial_connection_time_ms)),
)
# What pgbench prints per progress line, as series: name stem, unit.
PROGRESS_SERIES = (("tps", "1/s"), ("latency", "s"))


def run_params(
    mode: str | None,
    clients: int | None,
    jobs: int | None,
    scale: int | None,
    protocol: str | None = None,
) -> dict[str, ParamValue]:
    """The params of every result of one pgbench run: ``mode``, ``clients``, ``jobs``
    (pgbench's threads), ``scale``, and ``protocol`` when it is not ``simple``; what is
    not known is left out."""
    params: dict[str, ParamValue] = {}
    for key, value in (("mode", mode), ("clients", clients), ("jobs", jobs), ("scale", scale)):
        if value is not None:
            params[key] = value
    if protocol and protocol != "simple":
        params["protocol"] = protocol
    return params


def report_params(report: PgbenchReport) -> dict[str, ParamValue]:
    """``run_params`` as the output itself tells them."""
    return run_params(
        mode_of(report.transaction_type),
        report.clients,
        report.threads,
        report.scale,
        report.query_mode,
    )


def report_values(
    report: PgbenchReport,
) -> list[tuple[PgbenchMetric, dict[str, ParamValue], float]]:
    """Every quantity of one run's output, in the table's order: (metric, the params it
    adds to the run's, value). Values missing or not finite are left out.

    Each ``-r`` statement adds ``statement`` (its text) and ``statement_index`` (1-based),
    and ``script`` (1-based) when the run had several scripts.
    """
    values: list[tuple[PgbenchMetric, dict[str, ParamValue], float]] = []
    for metric, read in SUMMARY_METRICS:
        value = read(report)
        if value is not None and math.isfinite(value):
            values.append((metric, {}, float(value)))
    several = len({statement.script for statement in report.statements}) > 1
    for statement in report.statements:
        latency = ms_to_s(statement.latency_ms)
        if latency is None or not math.isfinite(latency):
            continue
        extra: dict[str, ParamValue] = {
            "statement": statement.text,
            "statement_index": statement.index,
        }
        if several:
            extra["script"] = statement.script
        values.append((STATEMENT_LATENCY, extra, latency))
    return values


def progress_series(report: PgbenchReport) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """The progress lines as (name stem, unit, points), times as pgbench printed them.

    Intervals without a finished transaction print ``lat nan ms`` on some versions: a point
    without a finite value is left out of that series.
    """
    points = [p for p in report.progress if math.isfinite(p.tps)]
    if not points:
        return []
    out = [("tps", "1/s", [(p.t, p.tps) for p in points])]
    timed = [
        (p.t, latency)
        for p in points
        if (latency := ms_to_s(p.latency_ms)) is not None and math.isfinite(latency)
    ]
    if timed:
        out.append(("latency", "s", timed))
    return out


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
        parsed = Parsed()
        parsed.results = report_results(report, report_params(report))
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
    report: PgbenchReport, params: Mapping[str, ParamValue], benchmark: str = "pgbench"
) -> list[Result]:
    """The results of one run (one sample each), in normalised units."""
    return [
        Result(
            benchmark=benchmark,
            params={**params, **extra},
            metric=metric.name,
            unit=metric.unit,
            direction=metric.direction,
            samples=[value],
            original_unit=metric.original_unit,
        )
        for metric, extra, value in report_values(report)
    ]


def report_series(report: PgbenchReport, suffix: str = "") -> list[Series]:
    """The progress lines as series of tps and latency; times as pgbench printed them."""
    return [
        Series(
            name=f"pgbench.{stem}{suffix}",
            unit=unit,
            t=[t for t, _ in points],
            values=[value for _, value in points],
        )
        for stem, unit, points in progress_series(report)
    ]


def ms_to_s(ms: float | None) -> float | None:
    """Milliseconds as printed by pgbench to seconds, without float noise (0.407 -> 0.000407)."""
    return None if ms is None else round(ms * MS, 12)
