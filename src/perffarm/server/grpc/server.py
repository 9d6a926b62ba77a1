"""The grpc.aio server: built on the app's state, run on uvicorn's event loop.

Started and stopped by the app's lifespan (server/app.py), so HTTP and gRPC share one
process, one event loop and one SQLAlchemy engine. With ``--workers N`` every worker
process serves gRPC on the same port: grpcio binds with SO_REUSEPORT (Linux), and the
kernel spreads new connections over the workers as it does for HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from fastapi import FastAPI
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from perffarm.proto.grpc_testing import control_pb2
from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.server.grpc.methods import LOADTESTS, METHODS, QPS_REPORTER, RUNS, SERVICES
from perffarm.server.grpc.services import Services
from perffarm.server.settings import Settings

log = logging.getLogger("perffarm.grpc")

#: Seconds calls in flight get to finish when the server stops.
STOP_GRACE = 5.0


def _handlers(services: Services) -> list[grpc.GenericRpcHandler]:
    served = _methods(services)
    unruled = [f"/{s}/{m}" for s, methods in served.items() for m in methods]
    unruled = [path for path in unruled if path not in METHODS]
    if unruled:
        # Who may call a method is declared with it (methods.py), or it is not served.
        raise RuntimeError(f"gRPC methods without a rule in methods.METHODS: {unruled}")
    return [grpc.method_handlers_generic_handler(s, m) for s, m in served.items()]


def _methods(services: Services) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
    # Requests arrive as bytes (no deserializer): the methods decode them, so a message
    # that does not decode is answered INVALID_ARGUMENT instead of grpcio's INTERNAL.
    unary = grpc.unary_unary_rpc_method_handler
    return {
        RUNS: {
            "SubmitRun": unary(
                services.submit_run,
                response_serializer=pb.SubmitRunResponse.SerializeToString,
            ),
            "ListUserResults": unary(
                services.list_user_results,
                response_serializer=pb.ResultsPage.SerializeToString,
            ),
            "ListAllResults": unary(
                services.list_all_results,
                response_serializer=pb.ResultsPage.SerializeToString,
            ),
        },
        LOADTESTS: {
            "StreamDatapoints": grpc.stream_stream_rpc_method_handler(
                services.stream_datapoints,
                response_serializer=pb.BatchAck.SerializeToString,
            )
        },
        QPS_REPORTER: {
            "ReportScenario": unary(
                services.report_scenario,
                response_serializer=control_pb2.Void.SerializeToString,
            )
        },
    }


def tls_credentials(cert: str, key: str) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(Path(key).read_bytes(), Path(cert).read_bytes())])


@asynccontextmanager
async def serving(app: FastAPI, settings: Settings) -> AsyncIterator[grpc.aio.Server]:
    """Serve gRPC at ``settings.grpc_address`` for as long as the context is open."""
    assert settings.grpc_address
    server = grpc.aio.server(
        options=[
            # The same limit as an HTTP body (--max-body).
            ("grpc.max_receive_message_length", settings.max_body),
            # Long-lived datapoint streams: let clients keep idle connections alive.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
    )
    server.add_generic_rpc_handlers(_handlers(Services(app)))
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )  # fmt: skip
    if settings.grpc_tls_cert and settings.grpc_tls_key:
        server.add_secure_port(
            settings.grpc_address, tls_credentials(settings.grpc_tls_cert, settings.grpc_tls_key)
        )
    else:
        server.add_insecure_port(settings.grpc_address)
    await server.start()
    for name in ("", *SERVICES):
        await checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC services listening on %s", settings.grpc_address)
    try:
        yield server
    finally:
        await checker.enter_graceful_shutdown()
        await server.stop(STOP_GRACE)
