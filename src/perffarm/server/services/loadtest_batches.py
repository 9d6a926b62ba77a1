"""Parsing a load-test batch (``POST /api/v1/loadtests/{id}/datapoints``, the gRPC
stream): checked straight from its JSON body into the form datapoints are stored in.

A metrics object is kept as sent, byte for byte, not parsed into Python values: with 50
metrics a datapoint, that parse was the cost of ingest.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import orjson
from pydantic import ValidationError

from perffarm.gcpause import collector_paused
from perffarm.loadtest.relays import read_points
from perffarm.loadtest.sketch import DDSketch
from perffarm.model.loadtest import MAX_BATCH_DATAPOINTS, MAX_METRICS_DEPTH, DatapointBatch
from perffarm.server.core.errors import FieldProblem, Invalid

_MAX_INT = 2**53


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BatchError(Invalid):
    """A batch that cannot be stored: the field at fault (``body.datapoints.3.metrics``)
    and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"invalid batch: {field}: {message}", fields=[FieldProblem(field, message)]
        )
        self.field = field
        self.problem = message


@dataclass
class ParsedBatch:
    """A checked batch, its datapoints already in their stored form.

    ``data`` is the JSON array ``[{"peerId","timestamp","metrics"}, ...]`` with every
    timestamp set (the server's time of arrival where the worker sent none); ``metrics``
    objects are kept byte for byte as the worker sent them.
    """

    envelope: DatapointBatch
    count: int
    first_timestamp: int | None
    last_timestamp: int | None
    data: bytes

    @property
    def points(self) -> list[dict[str, Any]]:
        """The datapoints as Python values (parses ``data``: not for the ingest path)."""
        return read_points(self.data) if self.count else []


def _check_sketch(field: str, data: Any) -> None:
    if data is None:
        return
    try:
        sketch = DDSketch.from_dict(data)
        ok = sketch.accuracy == DDSketch().accuracy and all(
            abs(k) < 100_000 and 0 <= v < _MAX_INT for k, v in sketch.buckets.items()
        )
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        ok = False
    if not ok:
        raise BatchError(field, "not a DDSketch of accuracy 0.01 (DDSketch.to_dict())")


def _envelope(fields: dict[str, Any]) -> DatapointBatch:
    try:
        envelope = DatapointBatch.model_validate({**fields, "datapoints": []})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise BatchError(f"body.{where}", first["msg"]) from None
    if envelope.sequence >= _MAX_INT:
        raise BatchError("body.sequence", f"must be below {_MAX_INT}")
    _check_sketch("body.latency", envelope.latency)
    if envelope.health is not None:
        _check_sketch("body.health.lag", envelope.health.lag)
        if envelope.health.rss_bytes is not None and not 0 <= envelope.health.rss_bytes < _MAX_INT:
            raise BatchError("body.health.rss_bytes", "out of range")
    return envelope


def parse_batch(raw: bytes) -> ParsedBatch:
    """Check a batch straight from its JSON body; raises ``BatchError`` (field, message).

    Checked: the envelope (worker, incarnation, sequence, health, latency, final) and each
    datapoint's shape (``peerId`` 1 to 200 characters, ``timestamp`` absent or epoch ms,
    ``metrics`` a JSON object, no other keys). A metrics object is kept as sent, not
    parsed into Python values: with 50 metrics a datapoint, that parse was the cost.
    """
    with collector_paused():
        return _parse_fast(raw)


_Meta = msgspec.Meta


class _Point(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    peerId: Annotated[str, _Meta(min_length=1, max_length=200)]
    timestamp: Annotated[int, _Meta(ge=0, lt=_MAX_INT)] | None = None
    metrics: msgspec.Raw


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    worker: Any = None
    incarnation: Any = None
    sequence: Any = None
    datapoints: Annotated[list[_Point], _Meta(max_length=MAX_BATCH_DATAPOINTS)] = []
    health: Any = None
    latency: Any = None
    final: Any = False


_DECODER = msgspec.json.Decoder(_Batch)
_ENCODE = msgspec.json.encode
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\[(\d+)\]")


def _msgspec_error(exc: Exception) -> BatchError:
    text = str(exc)
    match = _PATH.search(text)
    path = _STEP.sub(r".\1", match["path"]) if match else ""
    message = text[: match.start()] if match else text
    named = re.match(r"Object (missing required|contains unknown) field `([^`]*)`", message)
    in_point = path.startswith(".datapoints.") and path.count(".") == 2
    if named and in_point and named[1] == "contains unknown":
        message = "must be {peerId, timestamp?, metrics}"
    elif named:
        path += "." + named[2]
    return BatchError("body" + path, message)


#: What a number no double holds needs: an exponent of three digits, or twenty digits in a
#: row. Rare in metrics; where it appears, the datapoint's metrics are parsed to be sure.
_MAYBE_HUGE = re.compile(rb"\d{20,}|[eE][+-]?\d{3,}")


def _check_numbers(index: int, metrics: msgspec.Raw) -> None:
    """Every number of a datapoint's metrics is finite as a double: one that is not
    (``1e999``, an integer of 400 digits) would poison every reading of the test."""
    if not _MAYBE_HUGE.search(bytes(metrics)):
        return
    try:
        orjson.loads(bytes(metrics))
    except orjson.JSONDecodeError as exc:
        raise BatchError(
            f"body.datapoints.{index}.metrics",
            f"holds a number no double can hold ({str(exc).split(':')[0]}): send finite numbers",
        ) from None


def nested_too_deeply(raw: bytes, value: Any = None) -> bool:
    """Whether the metrics ``raw`` (the JSON text; ``value`` its parsed form, when the caller
    has it) nest deeper than MAX_METRICS_DEPTH levels. Cheap for flat metrics: text with
    fewer opening brackets than the limit cannot nest deeper."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_METRICS_DEPTH:
        return False
    if value is None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return True  # deeper than orjson reads (1024 levels)
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        if level > MAX_METRICS_DEPTH:
            return True
        stack.extend((child, level + 1) for child in node)
    return False


def _check_depth(raw: bytes, points: list[_Point]) -> None:
    if raw.count(b"{") + raw.count(b"[") <= MAX_METRICS_DEPTH:
        return
    for index, point in enumerate(points):
        if nested_too_deeply(bytes(point.metrics)):
            raise BatchError(
                f"body.datapoints.{index}.metrics",
                f"nested too deeply (more than {MAX_METRICS_DEPTH} levels; "
                "metrics are flat objects)",
            )


def _parse_fast(raw: bytes) -> ParsedBatch:
    try:
        decoded = _DECODER.decode(raw)
        # Skipped values (the metrics) are checked for syntax, not for UTF-8 (ASCII is
        # UTF-8, and isascii() is 10 times cheaper than decoding).
        if not raw.isascii():
            str(raw, "utf-8")
    except msgspec.ValidationError as exc:
        raise _msgspec_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise BatchError("body", "not valid JSON (UTF-8)") from None
    except RecursionError:
        raise BatchError("body", "nested too deeply (metrics are flat objects)") from None
    envelope = _envelope(
        {
            "worker": decoded.worker,
            "incarnation": decoded.incarnation,
            "sequence": decoded.sequence,
            "health": decoded.health,
            "latency": decoded.latency,
            "final": decoded.final,
        }
    )
    points = decoded.datapoints
    if not points:
        return ParsedBatch(envelope, 0, None, None, b"[]")
    stamp = now_ms()
    for index, point in enumerate(points):
        if "\x00" in point.peerId:
            raise BatchError(f"body.datapoints.{index}.peerId", "a string of 1 to 200 characters")
        if memoryview(point.metrics)[0] != 0x7B:  # "{"
            raise BatchError(f"body.datapoints.{index}.metrics", "must be an object")
        if point.timestamp is None:
            point.timestamp = stamp
    _check_depth(raw, points)
    if _MAYBE_HUGE.search(raw):
        for index, point in enumerate(points):
            _check_numbers(index, point.metrics)
    stamps = [point.timestamp or stamp for point in points]
    return ParsedBatch(envelope, len(points), min(stamps), max(stamps), _ENCODE(points))
