"""The tables, as SQLAlchemy Core metadata (the migrations create exactly these).

Core rather than ORM: ingest writes thousands of result rows per second with executemany,
and queries return plain rows turned into API models; there is no object graph to manage.

A *series* is every result sharing (project, benchmark, params, metric, machine
fingerprint, branch). Each distinct key gets a row in ``series`` and results carry its id,
so one series is one range scan of ``results_series`` ordered by commit time.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Times are stored in UTC; SQLite keeps them as ISO text without a zone, so readers attach
# UTC again (see perffarm.server.queries.utc).
Time = sa.DateTime(timezone=True)

server_settings = sa.Table(
    "server_settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

machines = sa.Table(
    "machines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    # Plain text until users exist (issue 4); then it becomes a reference to a user.
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("approved", sa.Boolean, nullable=False, default=False),
    sa.Column("registered_at", Time, nullable=False),
    sa.Column("approved_at", Time),
    sa.Column("last_seen", Time),
    sa.Column("fingerprint", sa.String(200)),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    # started_at of the run the metadata came from: an older run uploaded late must not
    # overwrite a newer description of the machine.
    sa.Column("metadata_run_started_at", Time),
    sa.Column("probe", sa.Text),
)

fingerprint_changes = sa.Table(
    "machine_fingerprint_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), nullable=False, index=True),
    sa.Column("old", sa.String(200)),
    sa.Column("new", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("at", Time, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), nullable=False),
    sa.Column("tag", sa.String(200)),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("branch", sa.String(200)),
    sa.Column("commit", sa.String(100)),
    sa.Column("commit_time", Time),
    sa.Column("fingerprint", sa.String(200)),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("finished_at", Time),
    sa.Column("received_at", Time, nullable=False),
    sa.Column("result_count", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("probe", sa.Text),
    sa.Column("document", sa.Text, nullable=False),
    sa.Index("ix_runs_started", "started_at", "id"),
    sa.Index("ix_runs_project_started", "project", "started_at"),
    sa.Index("ix_runs_machine_started", "machine_id", "started_at"),
    sa.Index("ix_runs_branch", "branch"),
    sa.Index("ix_runs_commit", "commit"),
    sa.Index("ix_runs_tag", "tag"),
)

series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # sha256 of the key: the columns themselves (params especially) can be too long for a
    # unique index on PostgreSQL, the hash never is.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("benchmark", sa.String(500), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    # '' rather than NULL for "none", so that equality lookups need no IS NULL special case.
    sa.Column("fingerprint", sa.String(200), nullable=False),
    sa.Column("branch", sa.String(200), nullable=False),
    sa.Index("ix_series_lookup", "project", "benchmark", "metric"),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), nullable=False),
    sa.Column("commit_time", Time),
    sa.Column("benchmark", sa.String(500), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("unit", sa.String(50), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("mean", sa.Float),
    sa.Column("median", sa.Float),
    sa.Column("stdev", sa.Float),
    sa.Column("min", sa.Float),
    sa.Column("max", sa.Float),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("samples", sa.Text, nullable=False),
    sa.Index("ix_results_series", "series_id", "commit_time", "id"),
    sa.Index("ix_results_machine", "machine_id", "id"),
)
