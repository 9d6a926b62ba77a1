import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    STORED: _ClassVar[Outcome]
    ALREADY_STORED: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
STORED: Outcome
ALREADY_STORED: Outcome

class SubmitRunRequest(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class SubmitRunResponse(_message.Message):
    __slots__ = ("id", "outcome", "machine", "machine_approved", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    MACHINE_APPROVED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    outcome: Outcome
    machine: str
    machine_approved: bool
    message: str
    def __init__(self, id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., machine: _Optional[str] = ..., machine_approved: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class ResultFilter(_message.Message):
    __slots__ = ("machine", "project", "benchmark", "metric")
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    machine: str
    project: str
    benchmark: str
    metric: str
    def __init__(self, machine: _Optional[str] = ..., project: _Optional[str] = ..., benchmark: _Optional[str] = ..., metric: _Optional[str] = ...) -> None: ...

class ListUserResultsRequest(_message.Message):
    __slots__ = ("user", "filter", "cursor", "limit", "samples")
    USER_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    user: str
    filter: ResultFilter
    cursor: str
    limit: int
    samples: bool
    def __init__(self, user: _Optional[str] = ..., filter: _Optional[_Union[ResultFilter, _Mapping]] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ..., samples: _Optional[bool] = ...) -> None: ...

class ListResultsRequest(_message.Message):
    __slots__ = ("filter", "cursor", "limit", "samples")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    filter: ResultFilter
    cursor: str
    limit: int
    samples: bool
    def __init__(self, filter: _Optional[_Union[ResultFilter, _Mapping]] = ..., cursor: _Optional[str] = ..., limit: _Optional[int] = ..., samples: _Optional[bool] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("id", "run_id", "project", "machine", "owner", "branch", "commit", "commit_time", "benchmark", "params_json", "metric", "unit", "direction", "n", "mean", "median", "stdev", "min", "max", "ci_low", "ci_high", "samples")
    ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    STDEV_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    id: int
    run_id: str
    project: str
    machine: str
    owner: str
    branch: str
    commit: str
    commit_time: _timestamp_pb2.Timestamp
    benchmark: str
    params_json: str
    metric: str
    unit: str
    direction: str
    n: int
    mean: float
    median: float
    stdev: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    samples: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[int] = ..., run_id: _Optional[str] = ..., project: _Optional[str] = ..., machine: _Optional[str] = ..., owner: _Optional[str] = ..., branch: _Optional[str] = ..., commit: _Optional[str] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., benchmark: _Optional[str] = ..., params_json: _Optional[str] = ..., metric: _Optional[str] = ..., unit: _Optional[str] = ..., direction: _Optional[str] = ..., n: _Optional[int] = ..., mean: _Optional[float] = ..., median: _Optional[float] = ..., stdev: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., samples: _Optional[_Iterable[float]] = ...) -> None: ...

class ResultsPage(_message.Message):
    __slots__ = ("results", "next_cursor")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Result]
    next_cursor: str
    def __init__(self, results: _Optional[_Iterable[_Union[Result, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class Datapoint(_message.Message):
    __slots__ = ("peer_id", "timestamp", "metrics_json")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    METRICS_JSON_FIELD_NUMBER: _ClassVar[int]
    peer_id: str
    timestamp: int
    metrics_json: str
    def __init__(self, peer_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., metrics_json: _Optional[str] = ...) -> None: ...

class DatapointBatch(_message.Message):
    __slots__ = ("test_id", "worker", "incarnation", "sequence", "datapoints", "final", "health_json", "latency_json")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    HEALTH_JSON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_JSON_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    worker: str
    incarnation: str
    sequence: int
    datapoints: _containers.RepeatedCompositeFieldContainer[Datapoint]
    final: bool
    health_json: str
    latency_json: str
    def __init__(self, test_id: _Optional[str] = ..., worker: _Optional[str] = ..., incarnation: _Optional[str] = ..., sequence: _Optional[int] = ..., datapoints: _Optional[_Iterable[_Union[Datapoint, _Mapping]]] = ..., final: _Optional[bool] = ..., health_json: _Optional[str] = ..., latency_json: _Optional[str] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("test_id", "worker", "incarnation", "sequence", "accepted", "duplicate")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    worker: str
    incarnation: str
    sequence: int
    accepted: int
    duplicate: bool
    def __init__(self, test_id: _Optional[str] = ..., worker: _Optional[str] = ..., incarnation: _Optional[str] = ..., sequence: _Optional[int] = ..., accepted: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...
