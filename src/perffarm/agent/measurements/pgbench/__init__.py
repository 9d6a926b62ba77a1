"""The pgbench measurement: a private PostgreSQL cluster, ``pgbench -i``, then every
combination of mode x clients x jobs for a duration, repeated.

Each pgbench run uses ``-r`` (per-statement latencies) and ``-P 1 --progress-timestamp``
(per-second progress, kept as series). Repetitions go in rounds over the combinations
(c1 c2 c3, c1 c2 c3, ...) so that a slow drift of the machine spreads over every
combination instead of biasing the last one. The cluster is always stopped and deleted in
``teardown``.
"""

from __future__ import annotations

from perffarm.agent.measurements.pgbench.client import run_client
from perffarm.agent.measurements.pgbench.measurement import PgbenchMeasurement
from perffarm.agent.measurements.pgbench.options import (
    BUILTIN_MODES,
    SCRIPT_PREFIX,
    Combination,
    PgbenchError,
    PgbenchOptions,
)
from perffarm.agent.measurements.pgbench.results import PgbenchRun
from perffarm.agent.pgcluster import ClusterError

__all__ = [
    "BUILTIN_MODES",
    "SCRIPT_PREFIX",
    "ClusterError",
    "Combination",
    "PgbenchError",
    "PgbenchMeasurement",
    "PgbenchOptions",
    "PgbenchRun",
    "run_client",
]
