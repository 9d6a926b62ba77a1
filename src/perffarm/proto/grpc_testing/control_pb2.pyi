import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from perffarm.proto.grpc_testing import payloads_pb2 as _payloads_pb2
from perffarm.proto.grpc_testing import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClientType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_CLIENT: _ClassVar[ClientType]
    ASYNC_CLIENT: _ClassVar[ClientType]
    OTHER_CLIENT: _ClassVar[ClientType]
    CALLBACK_CLIENT: _ClassVar[ClientType]

class ServerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_SERVER: _ClassVar[ServerType]
    ASYNC_SERVER: _ClassVar[ServerType]
    ASYNC_GENERIC_SERVER: _ClassVar[ServerType]
    OTHER_SERVER: _ClassVar[ServerType]
    CALLBACK_SERVER: _ClassVar[ServerType]

class RpcType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNARY: _ClassVar[RpcType]
    STREAMING: _ClassVar[RpcType]
    STREAMING_FROM_CLIENT: _ClassVar[RpcType]
    STREAMING_FROM_SERVER: _ClassVar[RpcType]
    STREAMING_BOTH_WAYS: _ClassVar[RpcType]
SYNC_CLIENT: ClientType
ASYNC_CLIENT: ClientType
OTHER_CLIENT: ClientType
CALLBACK_CLIENT: ClientType
SYNC_SERVER: ServerType
ASYNC_SERVER: ServerType
ASYNC_GENERIC_SERVER: ServerType
OTHER_SERVER: ServerType
CALLBACK_SERVER: ServerType
UNARY: RpcType
STREAMING: RpcType
STREAMING_FROM_CLIENT: RpcType
STREAMING_FROM_SERVER: RpcType
STREAMING_BOTH_WAYS: RpcType

class PoissonParams(_message.Message):
    __slots__ = ("offered_load",)
    OFFERED_LOAD_FIELD_NUMBER: _ClassVar[int]
    offered_load: float
    def __init__(self, offered_load: _Optional[float] = ...) -> None: ...

class ClosedLoopParams(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LoadParams(_message.Message):
    __slots__ = ("closed_loop", "poisson")
    CLOSED_LOOP_FIELD_NUMBER: _ClassVar[int]
    POISSON_FIELD_NUMBER: _ClassVar[int]
    closed_loop: ClosedLoopParams
    poisson: PoissonParams
    def __init__(self, closed_loop: _Optional[_Union[ClosedLoopParams, _Mapping]] = ..., poisson: _Optional[_Union[PoissonParams, _Mapping]] = ...) -> None: ...

class SecurityParams(_message.Message):
    __slots__ = ("use_test_ca", "server_host_override", "cred_type")
    USE_TEST_CA_FIELD_NUMBER: _ClassVar[int]
    SERVER_HOST_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    CRED_TYPE_FIELD_NUMBER: _ClassVar[int]
    use_test_ca: bool
    server_host_override: str
    cred_type: str
    def __init__(self, use_test_ca: _Optional[bool] = ..., server_host_override: _Optional[str] = ..., cred_type: _Optional[str] = ...) -> None: ...

class ClientConfig(_message.Message):
    __slots__ = ("server_targets", "client_type", "security_params", "outstanding_rpcs_per_channel", "client_channels", "async_client_threads", "rpc_type", "load_params", "payload_config", "histogram_params", "core_list", "core_limit", "other_client_api", "threads_per_cq", "messages_per_stream")
    SERVER_TARGETS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURITY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_RPCS_PER_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ASYNC_CLIENT_THREADS_FIELD_NUMBER: _ClassVar[int]
    RPC_TYPE_FIELD_NUMBER: _ClassVar[int]
    LOAD_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_PARAMS_FIELD_NUMBER: _ClassVar[int]
    CORE_LIST_FIELD_NUMBER: _ClassVar[int]
    CORE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OTHER_CLIENT_API_FIELD_NUMBER: _ClassVar[int]
    THREADS_PER_CQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_PER_STREAM_FIELD_NUMBER: _ClassVar[int]
    server_targets: _containers.RepeatedScalarFieldContainer[str]
    client_type: ClientType
    security_params: SecurityParams
    outstanding_rpcs_per_channel: int
    client_channels: int
    async_client_threads: int
    rpc_type: RpcType
    load_params: LoadParams
    payload_config: _payloads_pb2.PayloadConfig
    histogram_params: _stats_pb2.HistogramParams
    core_list: _containers.RepeatedScalarFieldContainer[int]
    core_limit: int
    other_client_api: str
    threads_per_cq: int
    messages_per_stream: int
    def __init__(self, server_targets: _Optional[_Iterable[str]] = ..., client_type: _Optional[_Union[ClientType, str]] = ..., security_params: _Optional[_Union[SecurityParams, _Mapping]] = ..., outstanding_rpcs_per_channel: _Optional[int] = ..., client_channels: _Optional[int] = ..., async_client_threads: _Optional[int] = ..., rpc_type: _Optional[_Union[RpcType, str]] = ..., load_params: _Optional[_Union[LoadParams, _Mapping]] = ..., payload_config: _Optional[_Union[_payloads_pb2.PayloadConfig, _Mapping]] = ..., histogram_params: _Optional[_Union[_stats_pb2.HistogramParams, _Mapping]] = ..., core_list: _Optional[_Iterable[int]] = ..., core_limit: _Optional[int] = ..., other_client_api: _Optional[str] = ..., threads_per_cq: _Optional[int] = ..., messages_per_stream: _Optional[int] = ...) -> None: ...

class ServerConfig(_message.Message):
    __slots__ = ("server_type", "security_params", "port", "async_server_threads", "core_limit", "payload_config", "core_list", "other_server_api", "threads_per_cq")
    SERVER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURITY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ASYNC_SERVER_THREADS_FIELD_NUMBER: _ClassVar[int]
    CORE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    CORE_LIST_FIELD_NUMBER: _ClassVar[int]
    OTHER_SERVER_API_FIELD_NUMBER: _ClassVar[int]
    THREADS_PER_CQ_FIELD_NUMBER: _ClassVar[int]
    server_type: ServerType
    security_params: SecurityParams
    port: int
    async_server_threads: int
    core_limit: int
    payload_config: _payloads_pb2.PayloadConfig
    core_list: _containers.RepeatedScalarFieldContainer[int]
    other_server_api: str
    threads_per_cq: int
    def __init__(self, server_type: _Optional[_Union[ServerType, str]] = ..., security_params: _Optional[_Union[SecurityParams, _Mapping]] = ..., port: _Optional[int] = ..., async_server_threads: _Optional[int] = ..., core_limit: _Optional[int] = ..., payload_config: _Optional[_Union[_payloads_pb2.PayloadConfig, _Mapping]] = ..., core_list: _Optional[_Iterable[int]] = ..., other_server_api: _Optional[str] = ..., threads_per_cq: _Optional[int] = ...) -> None: ...

class Void(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Scenario(_message.Message):
    __slots__ = ("name", "client_config", "num_clients", "server_config", "num_servers", "warmup_seconds", "benchmark_seconds", "spawn_local_worker_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    SERVER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NUM_SERVERS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SPAWN_LOCAL_WORKER_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    client_config: ClientConfig
    num_clients: int
    server_config: ServerConfig
    num_servers: int
    warmup_seconds: int
    benchmark_seconds: int
    spawn_local_worker_count: int
    def __init__(self, name: _Optional[str] = ..., client_config: _Optional[_Union[ClientConfig, _Mapping]] = ..., num_clients: _Optional[int] = ..., server_config: _Optional[_Union[ServerConfig, _Mapping]] = ..., num_servers: _Optional[int] = ..., warmup_seconds: _Optional[int] = ..., benchmark_seconds: _Optional[int] = ..., spawn_local_worker_count: _Optional[int] = ...) -> None: ...

class ScenarioResultSummary(_message.Message):
    __slots__ = ("qps", "qps_per_server_core", "server_system_time", "server_user_time", "client_system_time", "client_user_time", "latency_50", "latency_90", "latency_95", "latency_99", "latency_999", "server_cpu_usage", "successful_requests_per_second", "failed_requests_per_second", "client_polls_per_request", "server_polls_per_request", "server_queries_per_cpu_sec", "client_queries_per_cpu_sec", "start_time", "end_time")
    QPS_FIELD_NUMBER: _ClassVar[int]
    QPS_PER_SERVER_CORE_FIELD_NUMBER: _ClassVar[int]
    SERVER_SYSTEM_TIME_FIELD_NUMBER: _ClassVar[int]
    SERVER_USER_TIME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SYSTEM_TIME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_USER_TIME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_90_FIELD_NUMBER: _ClassVar[int]
    LATENCY_95_FIELD_NUMBER: _ClassVar[int]
    LATENCY_99_FIELD_NUMBER: _ClassVar[int]
    LATENCY_999_FIELD_NUMBER: _ClassVar[int]
    SERVER_CPU_USAGE_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_POLLS_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SERVER_POLLS_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SERVER_QUERIES_PER_CPU_SEC_FIELD_NUMBER: _ClassVar[int]
    CLIENT_QUERIES_PER_CPU_SEC_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    qps: float
    qps_per_server_core: float
    server_system_time: float
    server_user_time: float
    client_system_time: float
    client_user_time: float
    latency_50: float
    latency_90: float
    latency_95: float
    latency_99: float
    latency_999: float
    server_cpu_usage: float
    successful_requests_per_second: float
    failed_requests_per_second: float
    client_polls_per_request: float
    server_polls_per_request: float
    server_queries_per_cpu_sec: float
    client_queries_per_cpu_sec: float
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, qps: _Optional[float] = ..., qps_per_server_core: _Optional[float] = ..., server_system_time: _Optional[float] = ..., server_user_time: _Optional[float] = ..., client_system_time: _Optional[float] = ..., client_user_time: _Optional[float] = ..., latency_50: _Optional[float] = ..., latency_90: _Optional[float] = ..., latency_95: _Optional[float] = ..., latency_99: _Optional[float] = ..., latency_999: _Optional[float] = ..., server_cpu_usage: _Optional[float] = ..., successful_requests_per_second: _Optional[float] = ..., failed_requests_per_second: _Optional[float] = ..., client_polls_per_request: _Optional[float] = ..., server_polls_per_request: _Optional[float] = ..., server_queries_per_cpu_sec: _Optional[float] = ..., client_queries_per_cpu_sec: _Optional[float] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScenarioResult(_message.Message):
    __slots__ = ("scenario", "latencies", "client_stats", "server_stats", "server_cores", "summary", "client_success", "server_success", "request_results")
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STATS_FIELD_NUMBER: _ClassVar[int]
    SERVER_STATS_FIELD_NUMBER: _ClassVar[int]
    SERVER_CORES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SERVER_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_RESULTS_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    latencies: _stats_pb2.HistogramData
    client_stats: _containers.RepeatedCompositeFieldContainer[_stats_pb2.ClientStats]
    server_stats: _containers.RepeatedCompositeFieldContainer[_stats_pb2.ServerStats]
    server_cores: _containers.RepeatedScalarFieldContainer[int]
    summary: ScenarioResultSummary
    client_success: _containers.RepeatedScalarFieldContainer[bool]
    server_success: _containers.RepeatedScalarFieldContainer[bool]
    request_results: _containers.RepeatedCompositeFieldContainer[_stats_pb2.RequestResultCount]
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ..., latencies: _Optional[_Union[_stats_pb2.HistogramData, _Mapping]] = ..., client_stats: _Optional[_Iterable[_Union[_stats_pb2.ClientStats, _Mapping]]] = ..., server_stats: _Optional[_Iterable[_Union[_stats_pb2.ServerStats, _Mapping]]] = ..., server_cores: _Optional[_Iterable[int]] = ..., summary: _Optional[_Union[ScenarioResultSummary, _Mapping]] = ..., client_success: _Optional[_Iterable[bool]] = ..., server_success: _Optional[_Iterable[bool]] = ..., request_results: _Optional[_Iterable[_Union[_stats_pb2.RequestResultCount, _Mapping]]] = ...) -> None: ...
