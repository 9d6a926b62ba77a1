"""Every "may X do Y" of the server, in one place, asked by HTTP, gRPC and the web alike.

Each rule takes the ``Principal`` and the facts it needs (already read from the store) and
either returns or raises ``Unauthorized`` (no usable credential: sign in, or send one) or
``Forbidden`` (a credential that may not do this). The messages say what would be allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from perffarm.server.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from perffarm.server.core.principal import Machine, Principal

MACHINE_HEADER = "X-Perffarm-Machine"


@dataclass(frozen=True)
class Wording:
    """How a transport names what a caller sends, for messages that say what to do."""

    credentials: str = "Authorization: Bearer NAME:SECRET"
    machine: str = f"the {MACHINE_HEADER} header"
    loadtest_token: str = "X-Perffarm-Loadtest-Token header"


HTTP = Wording()
GRPC = Wording(
    credentials="metadata authorization: Bearer NAME:SECRET",
    machine="the x-perffarm-machine metadata",
    loadtest_token="x-perffarm-loadtest-token metadata",
)
READ_ONLY = (
    "this token may only read (scope read): create one with scope upload or admin to change "
    "anything"
)


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, headers={"WWW-Authenticate": "Bearer"})


# -- the global rules ---------------------------------------------------------------------


def may_change_anything(principal: Principal) -> None:
    """A user's token without the ``upload`` scope may only read (the web session, which
    carries every scope of its user, counts as such a token's opposite)."""
    if principal.kind == "user" and not principal.via_session and not principal.can("upload"):
        raise Forbidden(READ_ONLY)


def may_read_private_farm(principal: Principal) -> None:
    """On a private farm every read needs a signed-in user or a credential."""
    if principal.anonymous:
        raise _unauthorized(
            "this farm is private: sign in (`perffarm login`) or send a token with the read scope"
        )


def require_user(principal: Principal) -> None:
    if principal.user is None:
        raise _unauthorized(
            "this needs a signed-in user: `perffarm login --server URL`, or a token "
            "(Authorization: Bearer pft_...)"
        )


def require_admin(principal: Principal) -> None:
    if principal.anonymous:
        raise _unauthorized(
            "this needs an admin: the admin token (Authorization: Bearer TOKEN) or an admin "
            "user's token with the admin scope"
        )
    if not principal.admin:
        raise Forbidden("this needs an admin (an admin user's token with the admin scope)")


# -- machines -----------------------------------------------------------------------------


def upload_as(
    principal: Principal, name: str | None, named: Machine | None, wording: Wording = HTTP
) -> Machine:
    """The machine to upload runs for: the one authenticated by its secret, or the machine
    ``name`` (read from the store as ``named``) that a user's upload token acts for, which
    must be theirs (or any, for an admin)."""
    if principal.machine is not None:
        return principal.machine
    if principal.user is None and not principal.admin:
        raise _unauthorized(
            f"this needs a machine's credentials ({wording.credentials}), or a "
            f"user's upload token with the machine named in {wording.machine}; register a "
            "machine with `perffarm machine register`"
        )
    if not principal.can("upload"):
        raise Forbidden("this token may only read: uploading needs the upload scope")
    if not name:
        raise BadRequest(f"name the machine to upload as in {wording.machine}")
    if named is None or not (principal.admin or owns(principal, named)):
        raise Forbidden(f"you may not upload as machine {name!r}: only its owner or an admin may")
    if named.retired:
        raise Forbidden(f"machine {name!r} is retired: it uploads no more")
    return named


def owns(principal: Principal, machine: Machine) -> bool:
    """The caller is the user who owns the machine."""
    return (
        principal.user is not None
        and machine.owner_user_id is not None
        and machine.owner_user_id == principal.user.id
    )


def may_register_machines(principal: Principal, *, registration: str) -> None:
    """``registration`` is the server's mode: ``open`` (anybody) or ``admin``."""
    if registration != "admin" or principal.admin:
        return
    message = "this server registers machines for admins only: ask an admin to register it"
    if principal.anonymous:
        raise _unauthorized(message)
    raise Forbidden(message)


def may_register_machine(principal: Principal, *, owner: str, owner_is_user: bool) -> None:
    """Anonymous callers may not register machines for a user of the server (they would
    claim the user's name)."""
    if principal.user is None and not principal.admin and owner_is_user:
        raise Forbidden(
            f"{owner!r} is a user of this server: sign in as them "
            "(`perffarm login`) to register machines they own"
        )


def may_manage_machine(principal: Principal, name: str, machine: Machine | None) -> Machine:
    """Revoke or replace a machine's secret, grant users the right to act on it: its owner
    (with a token that may write) or an admin. ``machine`` is the one named ``name`` as
    stored, or None."""
    if principal.anonymous:
        raise _unauthorized(
            "this needs the machine's owner or an admin: sign in with `perffarm login`"
        )
    if machine is None:
        raise NotFound(f"no machine named {name!r}")
    if not (principal.admin or (owns(principal, machine) and principal.can("upload"))):
        raise Forbidden(f"only the owner of machine {name!r} or an admin may do this")
    return machine


# -- alerts -------------------------------------------------------------------------------


def may_act_on_alerts(principal: Principal) -> None:
    """Changing alerts, series and machines needs credentials at all: asked before anything
    is looked up (or a body read), so an anonymous caller learns nothing."""
    if principal.anonymous:
        raise _unauthorized(
            "this needs credentials: a signed-in user's token, a machine's credentials or "
            "the admin token (Authorization: Bearer ...)"
        )


def may_act_for_machine(principal: Principal, machine: Machine, *, granted: bool) -> None:
    """Change the alerts of a machine, or mark a new normal in its series: its owner, the
    users the owner lets act on it (``granted``: a grant of the machine to the calling
    user), an admin; the machine itself (approved), and the approved machines of the same
    owner, for the agents acting for that owner."""
    may_act_on_alerts(principal)
    if principal.admin:
        return
    if principal.user is not None:
        if owns(principal, machine) or granted:
            return
    elif principal.machine is not None:
        caller = principal.machine
        same_owner = caller.owner_user_id is not None and (
            caller.owner_user_id == machine.owner_user_id
        )
        if caller.approved and (caller.id == machine.id or same_owner):
            return
        if not caller.approved:
            raise Forbidden(f"machine {caller.name!r} is not approved yet")
    raise Forbidden(
        f"only the owner of machine {machine.name!r}, the users they let act on it "
        "(`perffarm machine grant`) and admins may change its alerts and series"
    )


def may_configure_alerts(principal: Principal) -> None:
    if not principal.admin:
        raise _unauthorized("this needs the admin token (Authorization: Bearer TOKEN)")


# -- tokens -------------------------------------------------------------------------------


def may_create_token(
    principal: Principal,
    scopes: frozenset[str],
    scope_text: str,
    *,
    expires_at: datetime | None,
    credential_ends: datetime | None,
) -> None:
    """A token never grants more, nor lasts longer, than the credential that made it:
    ``credential_ends`` is when the caller's own credential ends (None: never)."""
    if not scopes <= principal.scopes:
        have = " ".join(s for s in ("read", "upload", "admin") if s in principal.scopes)
        raise Forbidden(
            f"you may not create a token with scope {scope_text!r}: "
            f"your credential has {have or 'no scopes'}"
        )
    if credential_ends is not None and (expires_at is None or expires_at > credential_ends):
        ends = credential_ends.strftime("%Y-%m-%d %H:%M UTC")
        raise Forbidden(
            f"your credential ends at {ends}: a token it makes may not outlive it (ask for an "
            "expiry before then, or create the token with a longer-lived credential)"
        )


# -- load tests ---------------------------------------------------------------------------


def may_create_loadtest(
    principal: Principal, *, token_given: bool, wording: Wording = HTTP
) -> None:
    """Create a load test: the server's load-test token, an approved machine, a user whose
    token may write, or an admin."""
    if token_given:
        return
    if principal.anonymous:
        raise _unauthorized(
            f"creating load tests needs the load-test token ({wording.loadtest_token}), a "
            "signed-in user, an approved machine's credentials or the admin token"
        )
    may_change_anything(principal)
    if principal.machine is not None and not principal.machine.approved:
        raise Forbidden(f"machine {principal.machine.name!r} is not approved yet")


def may_write_loadtest(
    principal: Principal,
    test_id: str,
    *,
    token_given: bool,
    creator_user_id: int | None,
    wording: Wording = HTTP,
) -> None:
    """Start, finish or send datapoints to a load test: the server's load-test token or one
    minted for this test (``token_given``), an approved machine (a worker), the user who
    made the test, or an admin."""
    if token_given:
        return
    if principal.anonymous:
        what = f"load test {test_id!r}" if test_id else "load tests"
        raise _unauthorized(
            f"writing to {what} needs a token for it ({wording.loadtest_token}), an approved "
            "machine's credentials, its creator's sign-in or the admin token"
        )
    may_change_anything(principal)
    if principal.admin:
        return
    if principal.machine is not None:
        if principal.machine.approved:
            return
        raise Forbidden(f"machine {principal.machine.name!r} is not approved yet")
    if principal.user is not None and principal.user.id == creator_user_id:
        return
    raise Forbidden(
        f"only the creator of load test {test_id!r}, admins, approved machines and tokens "
        f"made for the test (POST /api/v1/loadtests/{test_id}/tokens) may write to it"
    )


def may_write_compat_loadtests(mode: str, *, token_given: bool) -> None:
    """The original harness's routes: open like the original (``open``), or the load-test
    token only (``token``)."""
    if mode == "open" or token_given:
        return
    raise _unauthorized(
        "this server needs the load-test token (X-Perffarm-Loadtest-Token header or ?token=)"
    )
