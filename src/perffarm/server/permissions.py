"""Every "may X do Y" of the server, in one place, asked by HTTP, gRPC and the web alike.

Each rule takes the ``Principal`` and the facts it needs (already read from the store) and
either returns or raises ``Unauthorized`` (no usable credential: sign in, or send one) or
``Forbidden`` (a credential that may not do this). The messages say what would be allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    return named


def owns(principal: Principal, machine: Machine) -> bool:
    """The caller is the user who owns the machine."""
    return (
        principal.user is not None
        and machine.owner_user_id is not None
        and machine.owner_user_id == principal.user.id
    )


def may_register_machine(
    principal: Principal, *, registration: str, owner: str, owner_is_user: bool
) -> None:
    """``registration`` is the server's mode (``open`` or ``admin``); anonymous callers may
    not register machines for a user of the server (they would claim the user's name)."""
    if registration == "admin" and not principal.admin:
        raise Forbidden(
            "this server registers machines for admins only: ask an admin to register it"
        )
    if principal.user is None and not principal.admin and owner_is_user:
        raise Forbidden(
            f"{owner!r} is a user of this server: sign in as them "
            "(`perffarm login`) to register machines they own"
        )


def may_manage_machine(principal: Principal, name: str, machine: Machine | None) -> Machine:
    """Revoke or replace a machine's secret: its owner (with a token that may write) or an
    admin. ``machine`` is the one named ``name`` as stored, or None."""
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
    """Changing alerts and series needs credentials at all: asked before anything is looked
    up, so an anonymous caller learns nothing about which alerts exist."""
    if principal.anonymous:
        raise _unauthorized(
            "this needs the admin token or a machine's credentials (Authorization: Bearer ...)"
        )


def may_change_alert(principal: Principal, machine: Machine) -> None:
    """Acknowledge an alert, mark it invalid or fixed, or new again."""
    may_act_on_alerts(principal)
    if principal.machine is not None and not principal.machine.approved:
        raise Forbidden(f"machine {principal.machine.name!r} is not approved yet")


def may_mark_break(principal: Principal, machine: Machine) -> None:
    """Mark "a new normal starts here" in a machine's series."""
    may_act_on_alerts(principal)
    if principal.admin:
        return
    if principal.user is not None:
        allowed = principal.user.name == machine.owner
    else:
        assert principal.machine is not None
        allowed = principal.machine.approved and principal.machine.owner == machine.owner
    if not allowed:
        raise Forbidden(
            "only the admin or a machine of the same owner "
            f"({machine.owner!r}) may mark a new normal in this series"
        )


def may_configure_alerts(principal: Principal) -> None:
    if not principal.admin:
        raise _unauthorized("this needs the admin token (Authorization: Bearer TOKEN)")


# -- tokens -------------------------------------------------------------------------------


def may_create_token(principal: Principal, scopes: frozenset[str], scope_text: str) -> None:
    """A token never grants more than the credential that made it."""
    if not scopes <= principal.scopes:
        have = " ".join(s for s in ("read", "upload", "admin") if s in principal.scopes)
        raise Forbidden(
            f"you may not create a token with scope {scope_text!r}: "
            f"your credential has {have or 'no scopes'}"
        )


# -- load tests ---------------------------------------------------------------------------


def may_write_loadtests(
    principal: Principal, *, token_given: bool, wording: Wording = HTTP
) -> None:
    """``/api/v1/loadtests`` writes (and their gRPC stream): the load-test token, or
    credentials that may write."""
    if token_given:
        return
    if principal.anonymous:
        raise _unauthorized(
            f"writing load tests needs the load-test token ({wording.loadtest_token}), the "
            "admin token or a machine's credentials"
        )
    may_change_anything(principal)


def may_write_compat_loadtests(mode: str, *, token_given: bool) -> None:
    """The original harness's routes: open like the original (``open``), or the load-test
    token only (``token``)."""
    if mode == "open" or token_given:
        return
    raise _unauthorized(
        "this server needs the load-test token (X-Perffarm-Loadtest-Token header or ?token=)"
    )
