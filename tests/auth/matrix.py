"""The permission matrix: every kind of caller, the answer each rule gives each of them, and
a farm with something of everybody's to call routes on.

The rules are the server's (``server/permissions.py``); every route and gRPC method names
its own (``x-perffarm-rule``, ``server/grpc/methods.py``). What a rule answers each kind of
caller is written here once, in ``ANSWERS``, after the global rules every route shares
(``expected``); the tests call each route with each caller and compare.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from perffarm.app import create_app
from perffarm.server.core.principal import Principal
from perffarm.server.core.timeutil import now, to_db
from perffarm.server.http.csrf import CSRF_COOKIE, CSRF_FIELD
from perffarm.server.http.middleware import SIGN_IN_PREFIXES
from perffarm.server.services.authn import SESSION_COOKIE
from perffarm.server.settings import LOADTEST_TOKEN_HEADER
from perffarm.server.store import alerts, machines, sessions, tokens, users
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing
from tests.auth.test_writers import _new_alert
from tests.server.conftest import make_settings
from tests.server.support import ADMIN, make_run
from tests.support import free_port

PASSWORD = "correct horse battery"
COMPAT_ENV = "PERFFARM_LOADTEST_COMPAT_AUTH"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# -- the callers ---------------------------------------------------------------------------

#: Every kind of caller. "alice" owns the things called on; "the owner" is her upload token.
KINDS = (
    "none",  # nothing sent
    "malformed",  # an Authorization header that is no credential
    "wrong_secret",  # alice's machine with a wrong secret
    "unknown_machine",  # a machine the server never registered
    "unapproved_machine",  # alice's machine, not approved yet
    "other_machine",  # bob's approved machine
    "owner_machine",  # alice's approved machine
    "revoked_token",  # alice's token, revoked
    "expired_token",  # alice's token, expired
    "refresh_token",  # alice's refresh token sent as an access token
    "read_token",  # alice's token with the read scope
    "upload_token",  # an admin user's token with the upload scope only (no admin rights)
    "admin_token",  # the server's admin token
    "disabled_user",  # a disabled user's token
    "another_user",  # bob's upload token
    "granted_user",  # carol's upload token; alice granted carol her machine
    "owner",  # alice's upload token
    "admin",  # an admin user's token with the admin scope
    "loadtest_token",  # a token made for the load test called on, nothing else
    "owner_session",  # alice's web session cookie
    "admin_session",  # the admin user's web session cookie
)
#: Credentials that are sent but refused wherever credentials are read.
BAD_CREDENTIALS = frozenset(
    {
        "malformed",
        "wrong_secret",
        "unknown_machine",
        "revoked_token",
        "expired_token",
        "refresh_token",
        "disabled_user",
    }
)
SESSIONS = frozenset({"owner_session", "admin_session"})
#: What gRPC has no way to send.
NOT_OVER_GRPC = SESSIONS

# -- what each rule answers ----------------------------------------------------------------

ALLOWED = "allowed"
REDIRECT = 303  # to /signin
Answer = str | int

_ALL_ALLOWED: dict[str, Answer] = dict.fromkeys(KINDS, ALLOWED)


def _answers(default: Answer, **given: Answer) -> dict[str, Answer]:
    return {kind: given.get(kind, default) for kind in KINDS}


_ADMINS = {"admin": ALLOWED, "admin_token": ALLOWED, "admin_session": ALLOWED}
_MACHINES = ("unapproved_machine", "other_machine", "owner_machine")

#: The rule's own answer to each kind of caller, after the global rules (``expected``).
ANSWERS: dict[str, dict[str, Answer]] = {
    "unchecked": _ALL_ALLOWED,
    "anyone": _ALL_ALLOWED,
    "signing_in": _ALL_ALLOWED,
    "web_session": _answers(REDIRECT, owner_session=ALLOWED, admin_session=ALLOWED),
    "signed_in": _answers(
        ALLOWED,
        none=401,
        loadtest_token=401,
        admin_token=403,
        **dict.fromkeys(_MACHINES, 403),
    ),
    "own_token": _answers(
        404,
        none=401,
        loadtest_token=401,
        owner=ALLOWED,
        **_ADMINS,
        **dict.fromkeys(_MACHINES, 403),
    ),
    "admin": _answers(403, none=401, loadtest_token=401, **_ADMINS),
    "uploader": _answers(
        403,
        none=401,
        loadtest_token=401,
        owner=ALLOWED,
        owner_session=ALLOWED,
        **_ADMINS,
        **dict.fromkeys(_MACHINES, ALLOWED),
    ),
    "registrar": _ALL_ALLOWED,
    "machine_manager": _answers(
        403, none=401, loadtest_token=401, owner=ALLOWED, owner_session=ALLOWED, **_ADMINS
    ),
    "owner_or_grant": _answers(
        403,
        none=401,
        loadtest_token=401,
        owner=ALLOWED,
        granted_user=ALLOWED,
        owner_machine=ALLOWED,
        **_ADMINS,
    ),
    "loadtest_creator": _answers(
        ALLOWED, none=401, loadtest_token=401, unapproved_machine=403, read_token=403
    ),
    "loadtest_writer": _answers(
        403,
        none=401,
        loadtest_token=ALLOWED,
        owner=ALLOWED,
        other_machine=ALLOWED,
        owner_machine=ALLOWED,
        **_ADMINS,
    ),
    "compat_writer": _ALL_ALLOWED,
}
#: A farm with --private, --registration admin and PERFFARM_LOADTEST_COMPAT_AUTH=token.
LOCKED_ANSWERS: dict[str, dict[str, Answer]] = {
    **ANSWERS,
    "registrar": _answers(403, none=401, loadtest_token=401, **_ADMINS),
    # Without the load-test token (a private farm lets no anonymous worker in).
    "compat_writer": _answers(401),
}


def is_form(path: str) -> bool:
    """The sign-in routes and forms: the session counts for their POSTs (they check CSRF)."""
    return path.startswith(SIGN_IN_PREFIXES)


def expected(
    rule: str, kind: str, method: str, path: str, *, locked: bool = False, grpc: bool = False
) -> Answer:
    """The answer to ``kind`` calling ``method path`` whose rule is ``rule``: the global
    rules of every route (permissions.GLOBAL_RULES), then the rule's own. Over gRPC there
    are no methods, forms nor cookies: the rules decide what a read token may write."""
    if rule == "unchecked":
        return ALLOWED
    if kind in BAD_CREDENTIALS:
        return 401
    write = method not in SAFE_METHODS and not grpc
    if kind == "read_token" and write and not is_form(path):
        return 403
    effective = kind
    if kind in SESSIONS and write and not is_form(path):
        effective = "none"
    if locked and effective in ("none", "loadtest_token"):
        # A private farm lets anonymous callers reach only what signing in needs.
        if rule == "signing_in":
            return ALLOWED
        if rule == "web_session":
            return REDIRECT
        return 401
    return (LOCKED_ANSWERS if locked else ANSWERS)[rule][effective]


# -- the farm --------------------------------------------------------------------------------


@dataclass
class Target:
    """What one call is made on: the path's values, the body, and the load test's token."""

    values: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    loadtest_token: str | None = None


@dataclass
class Farm:
    """A server in this process (TestClient, gRPC on a free port) with users, machines,
    runs, an alert and a load test of alice's, and a credential of every kind."""

    app: Any
    client: TestClient
    engine: sa.Engine
    grpc_target: str | None
    secrets: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)

    # -- making things ---------------------------------------------------------------------

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def user(self, name: str, **flags: Any) -> Any:
        with self.engine.connect() as conn:
            return users.create(conn, name, **flags)

    def token(
        self, user_id: int, scope: str = "upload", kind: str = "personal", **options: Any
    ) -> str:
        with self.engine.connect() as conn:
            _, secret = tokens.issue(
                conn,
                user_id,
                kind=kind,
                scopes=tokens.parse_scopes(scope),
                lifetime=options.pop("lifetime", timedelta(days=1)),
                **options,
            )
        return secret

    def machine(self, name: str, owner: str = "alice", *, approved: bool = True) -> str:
        """A machine of ``owner`` (a user); its ``NAME:SECRET``."""
        with self.engine.connect() as conn:
            owner_id = users.get(conn, name=owner).id
            made = machines.register(conn, name, owner, owner_user_id=owner_id)
            if approved:
                machines.approve(conn, name)
        return f"{name}:{made.secret}"

    def session(self, user_name: str) -> str:
        with self.engine.connect() as conn:
            return sessions.start(conn, users.get(conn, name=user_name).id)

    def loadtest(self, *, started: bool = True) -> tuple[str, str]:
        """A load test alice made, and a token made for it."""
        tests = self.app.state.loadtests
        with self.engine.connect() as conn:
            alice = users.get(conn, name="alice")
        made = tests.create(None, {}, started, creator=Principal(kind="user", user=alice))
        return made["id"], tests.mint_token(made["id"], by="user:alice")

    # -- calling ---------------------------------------------------------------------------

    def headers(self, kind: str, target: Target) -> dict[str, str]:
        """What ``kind`` sends: its credential (as a header or a cookie)."""
        sent: dict[str, str] = {"X-Perffarm-Machine": "alice-01"}
        if kind in SESSIONS:
            sent["Cookie"] = f"{SESSION_COOKIE}={self.session(self.ids[kind])}"
        elif kind == "loadtest_token":
            sent[LOADTEST_TOKEN_HEADER] = target.loadtest_token or self.ids["shared_test_token"]
        elif kind != "none":
            sent["Authorization"] = f"Bearer {self.secrets[kind]}"
        return sent

    def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table, but the bookkeeping that reading changes (last use,
        last seen, the rate limits' events)."""
        volatile = {"last_used_at", "last_seen", "last_poll"}
        rows: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for table in t.metadata.sorted_tables:
                if table.name == t.rate_events.name:
                    continue
                columns = [c for c in table.columns if c.name not in volatile]
                found = conn.execute(sa.select(*columns)).all()
                rows[table.name] = sorted(repr(tuple(r)) for r in found)
        return rows


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values[m.group(1)], path)


def make_farm(database: str, tmp: Path, **overrides: Any) -> Iterator[Farm]:
    """The farm, seeded; with gRPC when ``grpc`` is not False."""
    grpc_target = f"127.0.0.1:{free_port()}" if overrides.pop("grpc", True) else None
    compat = overrides.pop("compat_auth", "open")
    settings = make_settings(database, grpc_address=grpc_target, **overrides)
    # The load-test part reads its settings from the environment only.
    saved = os.environ.get(COMPAT_ENV)
    os.environ[COMPAT_ENV] = compat
    try:
        app = create_app(settings)
    finally:
        if saved is None:
            del os.environ[COMPAT_ENV]
        else:
            os.environ[COMPAT_ENV] = saved
    with TestClient(app) as client:
        farm = Farm(app=app, client=client, engine=app.state.engine, grpc_target=grpc_target)
        _seed(farm)
        yield farm


def _seed(farm: Farm) -> None:
    alice = farm.user("alice", display_name="Alice A.", email="alice@example.org")
    bob = farm.user("bob", email="bob@example.org")
    carol = farm.user("carol", email="carol@example.org")
    dave = farm.user("dave", email="dave@example.org")
    root = farm.user("root", email="root@example.org", is_admin=True)
    # Users who sign in with a password (POST /signin takes ten tries a minute per name).
    for index in range(4):
        farm.user(f"signer-{index}", password=PASSWORD)
    secrets = farm.secrets
    secrets["owner"] = farm.token(alice.id)
    secrets["read_token"] = farm.token(alice.id, "read")
    secrets["upload_token"] = farm.token(root.id, "upload")
    secrets["admin"] = farm.token(root.id, "admin")
    secrets["admin_token"] = ADMIN
    secrets["another_user"] = farm.token(bob.id)
    secrets["granted_user"] = farm.token(carol.id)
    secrets["disabled_user"] = farm.token(dave.id)
    secrets["refresh_token"] = farm.token(
        alice.id, kind="refresh", family=tokens.new_family(), lifetime=timedelta(days=30)
    )
    secrets["revoked_token"] = farm.token(alice.id)
    secrets["expired_token"] = farm.token(alice.id)
    secrets["malformed"] = "not a credential at all"
    secrets["unknown_machine"] = "ghost-01:" + "s" * 43
    with farm.engine.connect() as conn:
        users.set_flags(conn, "dave", disabled=True)
        revoked = tokens.resolve(conn, secrets["revoked_token"], kinds=("personal",))
        tokens.revoke(conn, revoked.id, user_id=alice.id)
    with farm.engine.connect() as conn, writing(conn):
        digest = hashlib.sha256(secrets["expired_token"].encode()).hexdigest()
        conn.execute(
            t.tokens.update()
            .where(t.tokens.c.token_hash == digest)
            .values(expires_at=to_db(now() - timedelta(seconds=1)))
        )
    secrets["owner_machine"] = farm.machine("alice-01")
    secrets["unapproved_machine"] = farm.machine("alice-new", approved=False)
    secrets["other_machine"] = farm.machine("bob-01", "bob")
    secrets["wrong_secret"] = "alice-01:" + "w" * 43
    farm.ids.update(owner_session="alice", admin_session="root")
    with farm.engine.connect() as conn:
        machine = machines.identity(conn, "alice-01")
        assert machine is not None
        machines.grant(conn, machine, carol.id, by="user:alice")
    # A run of alice's machine, an alert on one of its series, a load test of hers.
    run = make_run(machine="alice-01", project="demo")
    stored = farm.client.post(
        "/api/v1/runs",
        content=run.to_json(),
        headers={
            "Authorization": f"Bearer {secrets['owner_machine']}",
            "Content-Type": "application/json",
        },
    )
    assert stored.status_code == 201, stored.text
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def read(path: str, **params: str) -> list[dict[str, Any]]:
        answer = farm.client.get(f"/api/v1/{path}", params=params, headers=admin)
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    key = read("series/keys", project="demo")[0]
    with farm.engine.begin() as conn:
        alerts.record(conn, [_new_alert(key["id"], machine.id, str(run.id))])
    alert = read("alerts")[0]
    groups = read("alert-groups")
    result = read("results")[0]
    test_id, test_token = farm.loadtest()
    point = {"worker": "w", "incarnation": "i", "sequence": 0, "datapoints": [_POINT]}
    added = farm.client.post(
        f"/api/v1/loadtests/{test_id}/datapoints",
        json=point,
        headers={"Authorization": f"Bearer {secrets['owner']}"},
    )
    assert added.status_code == 200, added.text
    with farm.engine.connect() as conn:
        token_id = tokens.resolve(conn, secrets["owner"], kinds=("personal",)).id
    farm.ids.update(
        run_id=str(run.id),
        series_id=str(key["id"]),
        alert_id=str(alert["id"]),
        group_id=str(groups[0]["id"] if groups else 1),
        result_id=str(result["id"]),
        shared_test=test_id,
        shared_test_token=test_token,
        token_id=token_id,
    )


_POINT = {"peerId": "peer-1", "metrics": {"latency": 1.5}}

# -- what each route is called on ----------------------------------------------------------


def defaults(farm: Farm) -> dict[str, str]:
    """The path's values for reads: alice's things."""
    ids = farm.ids
    return {
        "run_id": ids["run_id"],
        "name": "alice-01",
        "owner": "alice",
        "project": "demo",
        "test_id": ids["shared_test"],
        "peer_id": "peer-1",
        "alert_id": ids["alert_id"],
        "group_id": ids["group_id"],
        "series_id": ids["series_id"],
        "result_id": ids["result_id"],
        "token_id": ids["token_id"],
        "user": "carol",
        "path": "app.css",
        "rest": "x",
    }


def _run_body(farm: Farm) -> dict[str, Any]:
    run = make_run(machine="alice-01", project="demo", commit=uuid.uuid4().hex + "00000000")
    return {"content": run.to_json(), "headers": {"Content-Type": "application/json"}}


def _batch_body(farm: Farm) -> dict[str, Any]:
    run = make_run(machine="alice-01", project="demo", commit=uuid.uuid4().hex + "00000000")
    return {"json": {"runs": [run.model_dump(mode="json", by_alias=True)]}}


def _machine_target(farm: Farm, *, approved: bool = True, grant: str | None = None) -> Target:
    name = farm.fresh("alice-m")
    farm.machine(name, approved=approved)
    if grant:
        with farm.engine.connect() as conn:
            machine = machines.identity(conn, name)
            assert machine is not None
            machines.grant(conn, machine, users.get(conn, name=grant).id, by="user:alice")
    return Target({"name": name, "user": grant or "bob"}, {"json": {"user": "bob"}})


def _run_target(farm: Farm, project: str = "demo") -> Target:
    """A run of alice's machine, of its own."""
    run = make_run(machine="alice-01", project=project, commit=uuid.uuid4().hex + "0" * 8)
    stored = farm.client.post(
        "/api/v1/runs",
        content=run.to_json(),
        headers={
            "Authorization": f"Bearer {farm.secrets['owner_machine']}",
            "Content-Type": "application/json",
        },
    )
    assert stored.status_code == 201, stored.text
    return Target({"run_id": str(run.id), "project": project})


def _user_target(farm: Farm) -> Target:
    name = farm.fresh("someone")
    farm.user(name)
    return Target({"name": name})


def _test_target(farm: Farm, *, started: bool = True, body: Any = None) -> Target:
    test_id, token = farm.loadtest(started=started)
    return Target({"test_id": test_id, "peer_id": "peer-1"}, body or {}, loadtest_token=token)


def _compat_test(farm: Farm, *, started: bool = True) -> Target:
    return _test_target(farm, started=started, body={"json": {"latency": 1}})


def _form(fields: dict[str, str]) -> dict[str, Any]:
    return {"data": fields}


def _signin(farm: Farm) -> Target:
    name = f"signer-{next(farm.counter) % 4}"
    return Target({}, _form({"username": name, "password": PASSWORD, "next": "/"}))


def _refresh(farm: Farm) -> Target:
    secret = farm.token(
        _user_id(farm, "alice"),
        kind="refresh",
        family=tokens.new_family(),
        lifetime=timedelta(days=30),
    )
    return Target({}, _form({"grant_type": "refresh_token", "refresh_token": secret}))


def _user_id(farm: Farm, name: str) -> int:
    with farm.engine.connect() as conn:
        return users.get(conn, name=name).id


def _token_target(farm: Farm) -> Target:
    alice = _user_id(farm, "alice")
    secret = farm.token(alice)
    with farm.engine.connect() as conn:
        return Target({"token_id": tokens.resolve(conn, secret, kinds=("personal",)).id})


def _device_target(farm: Farm) -> Target:
    """A device sign-in waiting for its user code (the form asks to confirm it)."""
    started = send(
        farm,
        Request("POST", "/oauth/device_authorization", {"data": {"client_id": "cli"}}, True),
    )
    assert started.status_code == 200, started.text
    return Target({}, _form({"user_code": started.json()["user_code"]}))


def _revocation(farm: Farm) -> Target:
    return Target({}, _form({"token": farm.token(_user_id(farm, "alice"))}))


#: Writes made on something of their own (a fresh one for each call that may change it),
#: with a body that does what the route is for; any other route is called on ``defaults``.
Prepare = Callable[[Farm], Target]
TARGETS: dict[tuple[str, str], Prepare] = {
    ("POST", "/api/v1/runs"): lambda f: Target({}, _run_body(f)),
    ("POST", "/api/v1/runs/batch"): lambda f: Target({}, _batch_body(f)),
    ("POST", "/api/v1/machines"): lambda f: Target(
        {}, {"json": {"name": f.fresh("reg"), "owner": "nobody-here"}}
    ),
    ("POST", "/api/v1/machines/{name}/approve"): lambda f: _machine_target(f, approved=False),
    ("POST", "/auth/machines/{name}/approve"): lambda f: _machine_target(f, approved=False),
    ("POST", "/api/v1/machines/{name}/revoke"): _machine_target,
    ("POST", "/api/v1/machines/{name}/secret"): _machine_target,
    ("POST", "/api/v1/machines/{name}/grants"): _machine_target,
    ("DELETE", "/api/v1/machines/{name}/grants/{user}"): lambda f: _machine_target(f, grant="bob"),
    ("POST", "/api/v1/tokens"): lambda f: Target({}, {"json": {"scope": "read", "expires": "1h"}}),
    ("DELETE", "/api/v1/tokens/{token_id}"): _token_target,
    ("POST", "/api/v1/users"): lambda f: Target({}, {"json": {"name": f.fresh("added")}}),
    ("POST", "/api/v1/users/{name}/disable"): _user_target,
    ("POST", "/api/v1/users/{name}/enable"): _user_target,
    ("POST", "/api/v1/users/{name}/approve"): _user_target,
    ("POST", "/api/v1/alerts/{alert_id}/state"): lambda f: Target(
        defaults(f), {"json": {"state": "acknowledged"}}
    ),
    ("POST", "/api/v1/series/{series_id}/breaks"): lambda f: Target(
        defaults(f), {"json": {"run_id": f.ids["run_id"]}}
    ),
    ("PUT", "/api/v1/alert-settings"): lambda f: Target({}, {"json": {}}),
    ("POST", "/api/v1/loadtests"): lambda f: Target({}, {"json": {}}),
    ("POST", "/api/v1/loadtests/{test_id}/start"): lambda f: _test_target(f, started=False),
    ("POST", "/api/v1/loadtests/{test_id}/finish"): _test_target,
    ("POST", "/api/v1/loadtests/{test_id}/tokens"): _test_target,
    ("POST", "/api/v1/loadtests/{test_id}/datapoints"): lambda f: _test_target(
        f,
        body={"json": {"worker": "w", "incarnation": "i", "sequence": 1, "datapoints": [_POINT]}},
    ),
    ("POST", "/test"): lambda f: Target({}, {"json": {}}),
    ("POST", "/test/{test_id}"): lambda f: Target({"test_id": f.fresh("compat")}, {"json": {}}),
    ("PUT", "/test/{test_id}/start"): lambda f: _compat_test(f, started=False),
    ("PUT", "/test/{test_id}/finish"): _compat_test,
    ("PUT", "/test/{test_id}/peer/{peer_id}/metrics"): _compat_test,
    ("PUT", "/test/{test_id}/peer/{peer_id}/results"): _compat_test,
    ("PUT", "/test/{test_id}/topology"): _compat_test,
    ("POST", "/oauth/device_authorization"): lambda f: Target({}, _form({"client_id": "cli"})),
    ("POST", "/oauth/token"): _refresh,
    ("POST", "/oauth/revoke"): _revocation,
    ("POST", "/signin"): _signin,
    ("POST", "/signout"): lambda f: Target({}, _form({})),
    ("POST", "/device"): lambda f: _device_target(f),
    ("DELETE", "/api/v1/runs/{run_id}"): _run_target,
    ("PUT", "/api/v1/runs/{run_id}/keep"): lambda f: Target(
        _run_target(f).values, {"json": {"keep": True}}
    ),
    ("DELETE", "/api/v1/projects/{project}"): lambda f: _run_target(f, f.fresh("project")),
    ("PUT", "/api/v1/projects/{project}/keep"): lambda f: Target(
        {"project": "demo"}, {"json": {"branch": "main"}}
    ),
    ("DELETE", "/api/v1/projects/{project}/keep"): lambda f: Target(
        {"project": "demo"}, {"params": {"branch": "main"}}
    ),
    ("POST", "/api/v1/machines/{name}/retire"): _machine_target,
    ("DELETE", "/api/v1/users/{name}"): _user_target,
    # Counts what a prune would remove; the farm's data stays for the calls after it.
    ("POST", "/api/v1/admin/prune"): lambda f: Target({}, {"params": {"dry_run": "true"}}),
}
#: Query strings of the reads that need one to read something.
QUERIES = {
    "/api/v1/series": "project=demo&benchmark=bench&metric=latency",
    "/api/v1/views/timeline": "project=demo&benchmark=bench&metric=latency",
    "/api/v1/views/timeline/changepoints": "project=demo&benchmark=bench&metric=latency",
    "/api/v1/series/keys": "project=demo",
    "/api/v1/baseline": "project=demo&branch=main",
    "/api/v1/loadtests/{test_id}/datapoints": "after=0",
    "/api/v1/views/compare": "a={run_id}&b={run_id}",
    "/compare": "a={run_id}&b={run_id}",
}
#: Routes limited per client address: each call comes from an address of its own.
LIMITED = frozenset({("POST", "/signin"), ("POST", "/oauth/device_authorization")})


def target(farm: Farm, method: str, path: str) -> Target:
    prepare = TARGETS.get((method, path))
    made = prepare(farm) if prepare else Target({})
    return Target({**defaults(farm), **made.values}, made.body, made.loadtest_token)


@dataclass
class Request:
    method: str
    url: str
    options: dict[str, Any]
    limited: bool


def request(farm: Farm, kind: str, method: str, path: str, aim: Target) -> Request:
    """What ``kind`` sends to call ``method path`` on ``aim`` (its session, if it has one,
    made now)."""
    headers = farm.headers(kind, aim)
    options = dict(aim.body)
    headers.update(options.pop("headers", {}))
    if method not in SAFE_METHODS and is_form(path):
        # A form from the site: the CSRF cookie and field agree (what is checked here is
        # who sends it, not whether the form is genuine).
        csrf = "c" * 43
        cookie = f"{CSRF_COOKIE}={csrf}"
        headers["Cookie"] = f"{headers['Cookie']}; {cookie}" if "Cookie" in headers else cookie
        options["data"] = {**options.get("data", {}), CSRF_FIELD: csrf}
    url = fill(path, aim.values)
    if method in SAFE_METHODS and path in QUERIES:
        url += "?" + fill(QUERIES[path], aim.values)
    return Request(method, url, {**options, "headers": headers}, (method, path) in LIMITED)


def send(farm: Farm, made: Request) -> Any:
    client = farm.client
    if made.limited:
        n = next(farm.counter)
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        client = TestClient(farm.app, client=(address, 50000))
    client.cookies.clear()
    return client.request(made.method, made.url, follow_redirects=False, **made.options)


def outcome(status: int) -> Answer:
    """How an answer counts: a refusal by its status, anything else as allowed."""
    if status in (401, 403, 404, REDIRECT):
        return status
    return ALLOWED


__all__ = [
    "ALLOWED",
    "ANSWERS",
    "KINDS",
    "NOT_OVER_GRPC",
    "REDIRECT",
    "Farm",
    "Target",
    "expected",
    "make_farm",
    "outcome",
    "request",
    "send",
    "target",
]
