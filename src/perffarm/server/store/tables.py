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
    # A retired machine keeps its history and uploads no more (migration 0008).
    sa.Column("retired_at", Time),
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
    # Retention (migration 0008): a run marked keep is never reduced to its summaries;
    # samples_removed_at is when its samples and attachments were removed.
    sa.Column("keep", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("samples_removed_at", Time),
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
    # Covering (migration 0006): a timeline is one index-only range scan. PostgreSQL keeps
    # the extra columns as INCLUDE; SQLite, which has no INCLUDE, after the key.
    sa.Index(
        "ix_results_series",
        "series_id",
        "commit_time",
        "id",
        postgresql_include=["machine_id", "median", "mean", "ci_low", "ci_high", "min", "max"],
    ),
    sa.Index("ix_results_machine", "machine_id", "id"),
)

# -- users, sign-in and tokens (issue 4) -------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("avatar_url", sa.String(1000)),
    # Both NULL for local accounts; (provider, subject) identifies a person at an OIDC
    # provider for good, whatever name or email the provider reports later.
    sa.Column("provider", sa.String(100)),
    sa.Column("subject", sa.String(255)),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("approved", sa.Boolean, nullable=False, default=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_sign_in", Time),
    sa.UniqueConstraint("provider", "subject"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    # The public id (shown by `token list`, used by `token revoke`); the secret part is
    # only ever known as the sha256 of the whole token.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    # personal | access | refresh: access and refresh tokens come from the device flow.
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time),
    sa.Column("revoked_at", Time),
    sa.Column("last_used_at", Time),
    # A refresh token and the access token issued with it share a family: revoking one
    # (logout) revokes the whole sign-in.
    sa.Column("family", sa.String(40)),
    # The token whose bearer made this one: revoking a token revokes what it made.
    sa.Column("parent_id", sa.String(40), index=True),
)

# Users a machine's owner lets act on the machine's alerts and series.
machine_grants = sa.Table(
    "machine_grants",
    metadata,
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("granted_by", sa.String(200), nullable=False),
    sa.Column("granted_at", Time, nullable=False),
)

# Events of the rate limits every server process shares (sign-in, device authorization).
rate_events = sa.Table(
    "rate_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_rate_events_key_at", "key", "at"),
)

device_codes = sa.Table(
    "device_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_code", sa.String(20), nullable=False, unique=True),
    sa.Column("client_id", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    # pending | approved | denied | used
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("last_poll", Time),
    sa.Column("interval", sa.Integer, nullable=False),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
)

# OIDC sign-ins in flight: state -> (provider, nonce, PKCE verifier), so that a callback
# reaching any server process can finish the sign-in.
sign_in_states = sa.Table(
    "sign_in_states",
    metadata,
    sa.Column("state", sa.String(100), primary_key=True),
    sa.Column("provider", sa.String(100), nullable=False),
    sa.Column("nonce", sa.String(100), nullable=False),
    sa.Column("code_verifier", sa.String(200), nullable=False),
    sa.Column("next_url", sa.String(1000), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

# Set when a signed-in user registers a machine; machines.owner keeps the user's name so
# existing owner queries keep working.
machine_owner_user_id = sa.Column("owner_user_id", sa.Integer, index=True)
machines.append_column(machine_owner_user_id)

# Load tests (issue 9). Times are epoch milliseconds, as the original harness's API speaks.
loadtests = sa.Table(
    "loadtests",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("started", sa.BigInteger),
    sa.Column("finished", sa.BigInteger),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("results", sa.Text, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("verdict", sa.String(20)),
    # Who made the test: its user may write to it (besides admins and approved machines).
    sa.Column("created_by_user_id", sa.Integer),
    sa.Column("created_by", sa.String(200)),
    sa.Index("ix_loadtests_created", "created"),
)

# Tokens minted for one load test (for its workers); only their hash is kept.
loadtest_tokens = sa.Table(
    "loadtest_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("test_id", sa.String(200), sa.ForeignKey("loadtests.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

# One row per accepted batch; the unique key is what makes a retried batch count once.
loadtest_batches = sa.Table(
    "loadtest_batches",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("test_id", sa.String(200), sa.ForeignKey("loadtests.id"), nullable=False),
    sa.Column("worker", sa.String(200), nullable=False),
    sa.Column("incarnation", sa.String(64), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Column("datapoints", sa.Integer, nullable=False),
    sa.Column("final", sa.Boolean, nullable=False),
    sa.Column("health", sa.Text),
    sa.Column("latency", sa.Text),
    sa.UniqueConstraint("test_id", "worker", "incarnation", "sequence"),
)

# Datapoints in chunks: one row per accepted batch, or per group of single datapoints
# (worker ''), holding them as one JSON array [{"peerId","timestamp","metrics"}, ...] in
# `data`, encoded as `codec` says ('json', 'lz4', 'zlib'). Migration 0005.
loadtest_chunks = sa.Table(
    "loadtest_chunks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("test_id", sa.String(200), sa.ForeignKey("loadtests.id"), nullable=False),
    sa.Column("worker", sa.String(200), nullable=False),
    sa.Column("incarnation", sa.String(64), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("first_timestamp", sa.BigInteger, nullable=False),
    sa.Column("last_timestamp", sa.BigInteger, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("codec", sa.String(10), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("test_id", "worker", "incarnation", "sequence"),
    sa.Index("ix_loadtest_chunks_test", "test_id", "id"),
)

loadtest_topology = sa.Table(
    "loadtest_topology",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("test_id", sa.String(200), sa.ForeignKey("loadtests.id"), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("topology", sa.Text, nullable=False),
    sa.Index("ix_loadtest_topology_test", "test_id", "id"),
)

# -- change points and alerts (issue 6) -------------------------------------------------------

# Alerts for the same commit range of one project and branch, across benchmarks and machines:
# one commit usually moves many results, and people triage it once.
alert_groups = sa.Table(
    "alert_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("branch", sa.String(200), nullable=False),
    # '' rather than NULL for a run without a commit, so the unique key compares equal.
    sa.Column("commit_before", sa.String(100), nullable=False),
    sa.Column("commit_after", sa.String(100), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("project", "branch", "commit_before", "commit_after"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("group_id", sa.Integer, sa.ForeignKey("alert_groups.id"), nullable=False, index=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("benchmark", sa.String(500), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("branch", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(200), nullable=False),
    sa.Column("unit", sa.String(50), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("magnitude", sa.Float, nullable=False),
    sa.Column("magnitude_low", sa.Float),
    sa.Column("magnitude_high", sa.Float),
    sa.Column("p_value", sa.Float, nullable=False),
    sa.Column("mean_before", sa.Float, nullable=False),
    sa.Column("mean_after", sa.Float, nullable=False),
    sa.Column("n_before", sa.Integer, nullable=False),
    sa.Column("n_after", sa.Integer, nullable=False),
    sa.Column("noise_cv", sa.Float),
    sa.Column("noise_run_to_run", sa.Float),
    sa.Column("noise_level", sa.String(20), nullable=False),
    sa.Column("run_before", sa.String(36), nullable=False),
    sa.Column("run_after", sa.String(36), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("commit_before", sa.String(100), nullable=False),
    sa.Column("commit_after", sa.String(100), nullable=False),
    sa.Column("commit_time_before", Time),
    sa.Column("commit_time_after", Time),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("state_by", sa.String(200)),
    sa.Column("state_at", Time),
    sa.Column("state_note", sa.Text),
    sa.Column("created_at", Time, nullable=False),
    # What makes detection idempotent: several workers (or a rebuild after a restart) finding
    # the same change record it once.
    sa.UniqueConstraint("series_id", "machine_id", "run_after"),
    sa.Index("ix_alerts_project_state", "project", "state", "id"),
)

# Every state an alert went through, with who and when; alerts.state is the latest.
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("at", Time, nullable=False),
    sa.Column("note", sa.Text),
)

# "A new normal starts here": the run's point starts a new segment of its machine's series.
series_breaks = sa.Table(
    "series_breaks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
    sa.Column("machine_id", sa.Integer, sa.ForeignKey("machines.id"), nullable=False),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("series_id", "machine_id", "run_id"),
)


# -- data lifecycle (issue 18) ----------------------------------------------------------------

# A project ('' branch) or one of its branches whose runs keep their samples for good.
keep_marks = sa.Table(
    "keep_marks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("branch", sa.String(200), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.UniqueConstraint("project", "branch"),
)

# Ids of deleted runs: only the machine that sent one may send it again.
deleted_runs = sa.Table(
    "deleted_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("machine_id", sa.Integer, nullable=False),
    sa.Column("deleted_at", Time, nullable=False),
)

# Who deleted, retired, disabled or pruned what, and when.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", Time, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("ix_audit_events_at", "at", "id"),
)
