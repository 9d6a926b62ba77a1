"""The unattended agent: new commits on tracked branches -> build -> benchmark -> upload.

Every round, for each suite:

- with a ``build:`` section, the mirror is fetched and each tracked branch head that was
  never benchmarked is built and measured, one run per head; a head counts as benchmarked
  once its run is stored, whatever its status (``ok``, ``failed``, ``build-failed``) except
  ``interrupted``, so a broken commit is not rebuilt every hour. The tracked branches are,
  in order of precedence: ``--branch``, the server's list of branches of interest for the
  project, the suite's ``branches``;
- without one, the suite runs once (a periodic system benchmark).

Then every stored run the server lacks is uploaded. Which heads were benchmarked is kept in
a small SQLite file beside the store (``<store>.agent.db``), so an agent restart never
measures a head twice; the local store itself stays the only copy of the runs.

SIGTERM and SIGINT stop the agent between steps: during the sleep at once; during a run,
the runner turns the signal into an ``interrupted`` run (saved) and the agent then exits
without starting another or uploading.
"""

from __future__ import annotations

from perffarm.agent.unattended.agent import (
    DEFAULT_EVERY,
    Agent,
    AgentOptions,
    RoundOutcome,
    parse_every,
)
from perffarm.agent.unattended.log import LOGGER_NAME, configure_logging, set_secrets
from perffarm.agent.unattended.state import BenchmarkedHeads, state_path_for

__all__ = [
    "DEFAULT_EVERY",
    "LOGGER_NAME",
    "Agent",
    "AgentOptions",
    "BenchmarkedHeads",
    "RoundOutcome",
    "configure_logging",
    "parse_every",
    "set_secrets",
    "state_path_for",
]
