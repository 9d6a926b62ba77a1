"""The gRPC server itself: health, reflection, TLS, limits, the command's options, and the
generated code being what the .proto files give."""

from __future__ import annotations

import datetime
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from perffarm.proto.v1 import perffarm_pb2 as pb
from perffarm.proto.v1 import perffarm_pb2_grpc
from tests.grpc.support import GrpcServerProcess, bearer
from tests.grpc.test_auth import refused

ROOT = Path(__file__).parents[2]
PROTO = ROOT / "src" / "perffarm" / "proto"


def test_health_checking(sqlite_server: GrpcServerProcess) -> None:
    with sqlite_server.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "perffarm.v1.Runs", "perffarm.v1.LoadTests",
                        "grpc.testing.ReportQpsScenarioService"):  # fmt: skip
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        error = refused(
            lambda: stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(sqlite_server: GrpcServerProcess) -> None:
    with sqlite_server.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="perffarm.v1.Runs"),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="grpc.testing.ScenarioResult"
            ),
        ]
        listing, runs, scenario = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
    names = {s.name for s in listing.list_services_response.service}
    assert names >= {
        "perffarm.v1.Runs", "perffarm.v1.LoadTests", "grpc.testing.ReportQpsScenarioService",
        "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
    }  # fmt: skip
    assert runs.file_descriptor_response.file_descriptor_proto
    assert scenario.file_descriptor_response.file_descriptor_proto


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = GrpcServerProcess(
        str(tmp_path / "farm.db"),
        tmp_path,
        extra=["--grpc-tls-cert", str(cert), "--grpc-tls-key", str(key)],
    )
    # start() probes the port in plain text, which a TLS port never completes: start the
    # process through the parent class and probe over TLS here.
    super(GrpcServerProcess, server).start()
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with server.channel(credentials) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = health_pb2_grpc.HealthStub(channel)
            answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with server.channel() as plain:
            error = refused(
                lambda: health_pb2_grpc.HealthStub(plain).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            )
            assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_messages_above_max_body_are_refused(tmp_path: Path) -> None:
    with GrpcServerProcess(str(tmp_path / "farm.db"), tmp_path, extra=["--max-body", "64KiB"]) as s:
        token = s.register()
        with s.channel() as channel:
            stub = perffarm_pb2_grpc.RunsStub(channel)
            big = pb.SubmitRunRequest(document=b" " * 100_000)
            error = refused(lambda: stub.SubmitRun(big, metadata=bearer(token), timeout=30))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--grpc-tls-cert", "c.pem"], "--grpc-tls-cert needs --grpc-address"),
        (["--grpc-address", "nonsense"], "give HOST:PORT"),
        (["--grpc-address", "127.0.0.1:1", "--grpc-tls-cert", "c.pem"], "go together"),
        (
            ["--grpc-address", "127.0.0.1:1", "--grpc-tls-cert", "no.pem", "--grpc-tls-key", "k"],
            "no.pem",
        ),
    ],
)
def test_bad_grpc_options_are_one_line_errors(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "perffarm.commands", "server", "--database", str(tmp_path / "f.db"),
         *arguments],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    """scripts/generate-protos gives exactly the committed modules (they never drift)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "generate-protos"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr
    generated = sorted(p.relative_to(tmp_path / "perffarm" / "proto")
                       for p in (tmp_path / "perffarm" / "proto").rglob("*_pb2*"))  # fmt: skip
    committed = sorted(p.relative_to(PROTO) for p in PROTO.rglob("*_pb2*") if p.suffix != ".pyc")
    assert generated == committed
    for name in generated:
        same = filecmp.cmp(tmp_path / "perffarm" / "proto" / name, PROTO / name, shallow=False)
        assert same, f"{name} differs: run scripts/generate-protos"
