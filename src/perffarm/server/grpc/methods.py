"""Every gRPC method the results server serves and the rule of ``server/permissions.py``
that decides who may call it, as the HTTP routes declare theirs (``x-perffarm-rule``).

Without grpcio, so that docs/auth.md's table can be written where gRPC is not installed;
``server.py`` serves exactly these methods (it refuses to start with a handler that has no
rule here), and the permission matrix test calls each with every kind of caller.
"""

from __future__ import annotations

from perffarm.server import permissions
from perffarm.server.permissions import Rule

RUNS = "perffarm.v1.Runs"
LOADTESTS = "perffarm.v1.LoadTests"
QPS_REPORTER = "grpc.testing.ReportQpsScenarioService"
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"
#: The services of perffarm's own (health and reflection are grpcio's).
SERVICES = (RUNS, LOADTESTS, QPS_REPORTER)

#: "/service/method" -> who may call it.
METHODS: dict[str, Rule] = {
    f"/{RUNS}/SubmitRun": permissions.UPLOADER,
    f"/{RUNS}/ListUserResults": permissions.ANYONE,
    f"/{RUNS}/ListAllResults": permissions.ANYONE,
    f"/{LOADTESTS}/StreamDatapoints": permissions.LOADTEST_WRITER,
    f"/{QPS_REPORTER}/ReportScenario": permissions.UPLOADER,
    # grpcio's own: they read no credentials.
    f"/{HEALTH}/Check": permissions.UNCHECKED,
    f"/{HEALTH}/List": permissions.UNCHECKED,
    f"/{HEALTH}/Watch": permissions.UNCHECKED,
    f"/{REFLECTION}/ServerReflectionInfo": permissions.UNCHECKED,
}
