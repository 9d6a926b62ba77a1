"""A private, throw-away PostgreSQL cluster for benchmarks (``PrivateCluster``).

- ``cluster``: the cluster itself, and reaping the clusters of a process that died;
- ``programs``: finding PostgreSQL's programs, how a client connects, quoting settings;
- ``processes``: stopping every cluster at exit and on SIGTERM, owner files, killing a
  postmaster's tree.
"""

from __future__ import annotations

from perffarm.agent.pgcluster.cluster import (
    BASE_PREFIX,
    ISOLATION_SETTINGS,
    PrivateCluster,
    reap_stale_clusters,
)
from perffarm.agent.pgcluster.processes import OWNER_FILE
from perffarm.agent.pgcluster.programs import ClusterError, ConnectionInfo, find_bin_dir

__all__ = [
    "BASE_PREFIX",
    "ISOLATION_SETTINGS",
    "OWNER_FILE",
    "ClusterError",
    "ConnectionInfo",
    "PrivateCluster",
    "find_bin_dir",
    "reap_stale_clusters",
]
