"""Load-test payloads of ``/api/v1/loadtests``: shared by the workers and the server.

A worker sends its datapoints in batches. ``(worker, incarnation, sequence)`` names a batch
exactly once: a worker that retries a batch whose answer it never saw sends the same three
values, and the server keeps the first copy only. ``incarnation`` changes when a worker
process starts, so a restarted worker's sequence numbers never collide with its earlier life.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from perffarm.model.text import Text

TEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
MAX_BATCH_DATAPOINTS = 100_000
#: Levels of nesting a datapoint's metrics may have (the metrics object is level 1). Metrics
#: are flat objects of numbers; every reader of a stored datapoint (the JSON writers of the
#: listings stop near 255 levels) must survive the deepest one accepted.
MAX_METRICS_DEPTH = 64
#: A worker silent for this long before the end, without its final batch, is missing.
DEFAULT_MISSING_AFTER_MS = 10_000


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Datapoint(_Payload):
    peer_id: str = Field(alias="peerId", min_length=1, max_length=200)
    #: Epoch milliseconds when the peer closed its period; the server stamps it if absent.
    timestamp: int | None = None
    metrics: dict[str, Any]


class WorkerHealth(_Payload):
    """How busy a worker is: lag of its tick loop (a DDSketch of ms), CPU, memory."""

    peers: int = 0
    lag: dict[str, Any] | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None


class DatapointBatch(_Payload):
    worker: str = Field(min_length=1, max_length=200)
    incarnation: str = Field(min_length=1, max_length=64)
    sequence: int = Field(ge=0)
    datapoints: list[Datapoint] = Field(default_factory=list, max_length=MAX_BATCH_DATAPOINTS)
    health: WorkerHealth | None = None
    #: Message latencies of the batch's period (DDSketch.to_dict), merged by the server.
    latency: dict[str, Any] | None = None
    #: The worker's last batch: a worker that sent it is finished, not missing.
    final: bool = False


class ThresholdSpec(_Payload):
    """k6's object form of a threshold: checked during the run when ``abortOnFail``."""

    threshold: str
    abortOnFail: bool = False  # k6 names it so
    delayAbortEval: str | float | None = None  # k6 names it so


#: ``{metric: [expression | {"threshold", "abortOnFail"?, "delayAbortEval"?}]}``
Thresholds = dict[str, list[str | ThresholdSpec]]


class BatchAck(_Payload):
    accepted: int
    duplicate: bool


class LoadTestCreate(_Payload):
    id: str | None = Field(default=None, pattern=TEST_ID_PATTERN)
    started: bool = False
    description: Text | None = Field(default=None, max_length=2000)
    duration: float | None = Field(default=None, gt=0, description="Seconds peers run.")
    peers: int | None = Field(default=None, ge=0)
    thresholds: Thresholds = Field(default_factory=dict)


class LoadTestInfo(_Payload):
    id: str
    created: int
    started: int | None = None
    finished: int | None = None
    status: str
    description: str | None = None
    duration: float | None = None
    peers: int | None = None
    thresholds: Thresholds = Field(default_factory=dict)
    datapoints: int = 0
    verdict: str | None = None


class LoadTestToken(_Payload):
    """A token for the workers of one load test, shown once."""

    test_id: str
    token: str = Field(description="Send it as X-Perffarm-Loadtest-Token; only its hash is kept.")
