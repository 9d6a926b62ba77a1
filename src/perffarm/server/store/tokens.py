"""Personal tokens and the device flow's access and refresh tokens; only hashes are kept.

A token reads ``pf<kind>_<id>_<secret>``: the id is public (``token list`` shows it,
``token revoke ID`` takes it), the secret is 256 random bits. The database keeps the
sha256 of the whole token, which is enough for a random secret (see ``core/secrets.py``).

Scopes nest: ``admin`` includes ``upload``, which includes ``read``. A user's token
never grants more than the user may do: ``admin`` only counts for an admin user.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from perffarm.model.users import TokenInfo
from perffarm.server.core.errors import Invalid, NotFound, Unauthorized
from perffarm.server.core.principal import SCOPES
from perffarm.server.core.secrets import hash_secret
from perffarm.server.core.timeutil import now, to_db, utc
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing

_IMPLIED = {"read": {"read"}, "upload": {"read", "upload"}, "admin": {"read", "upload", "admin"}}
_PREFIX = {"personal": "pft", "access": "pfa", "refresh": "pfr"}
_KIND_OF_PREFIX = {v: k for k, v in _PREFIX.items()}
TOKEN_PATTERN = re.compile(r"^(pft|pfa|pfr)_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,})$")
ACCESS_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=30)
MAX_PERSONAL_LIFETIME = timedelta(days=3650)
#: A personal token's lifetime when none is asked for.
DEFAULT_PERSONAL_LIFETIME = timedelta(days=90)
#: How precisely ``last_used_at`` is kept.
USE_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenRecord:
    id: str
    kind: str
    name: str
    scopes: frozenset[str]
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    family: str | None
    user_id: int

    def payload(self) -> TokenInfo:
        return TokenInfo(
            id=self.id,
            kind=self.kind,
            name=self.name,
            scopes=sorted(self.scopes, key=SCOPES.index),
            created_at=self.created_at,
            expires_at=self.expires_at,
            revoked_at=self.revoked_at,
            last_used_at=self.last_used_at,
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def parse_scopes(text: str | list[str] | None, *, default: str = "read") -> frozenset[str]:
    """The scopes named (space- or comma-separated) with those they include."""
    words = text if isinstance(text, list) else re.split(r"[\s,]+", (text or default).strip())
    granted: set[str] = set()
    for word in filter(None, words):
        if word not in _IMPLIED:
            raise Invalid(f"unknown scope {word!r}: choose from {', '.join(SCOPES)}")
        granted |= _IMPLIED[word]
    return frozenset(granted or _IMPLIED[default])


def scope_text(scopes: frozenset[str]) -> str:
    return " ".join(s for s in SCOPES if s in scopes)


def parse_lifetime(text: str | None) -> timedelta | None:
    """``90d``, ``12h``, ``30m``, ``2w``; ``never``/empty means no expiry."""
    if text is None or text.strip().lower() in ("", "never", "none"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text.lower())
    if not match:
        raise Invalid(f"expiry {text!r}: give a number and a unit, e.g. 90d, 12h, 2w, 30m")
    number, unit = int(match.group(1)), match.group(2)
    span = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}.get(
        unit, timedelta(weeks=1)
    )
    lifetime = span * number
    if lifetime <= timedelta(0) or lifetime > MAX_PERSONAL_LIFETIME:
        raise Invalid(f"expiry {text!r}: give between 1 minute and 10 years")
    return lifetime


def _new_token(kind: str) -> tuple[str, str]:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    token_id = "".join(secrets.choice(alphabet) for _ in range(12))
    return token_id, f"{_PREFIX[kind]}_{token_id}_{secrets.token_urlsafe(32)}"


def issue(
    conn: sa.Connection,
    user_id: int,
    *,
    kind: str,
    scopes: frozenset[str],
    lifetime: timedelta | None,
    name: str = "",
    family: str | None = None,
    parent_id: str | None = None,
    created: datetime | None = None,
) -> tuple[TokenRecord, str]:
    """A new token (the only time its secret exists outside the caller) and its record.
    ``parent_id``: the token whose bearer made this one (revoking it revokes this one)."""
    token_id, token = _new_token(kind)
    created = created or now()
    with writing(conn):
        conn.execute(
            t.tokens.insert().values(
                id=token_id,
                user_id=user_id,
                kind=kind,
                name=name[:200],
                scopes=scope_text(scopes),
                token_hash=hash_secret(token),
                created_at=to_db(created),
                expires_at=to_db(created + lifetime) if lifetime else None,
                family=family,
                parent_id=parent_id,
            )
        )
    return get(conn, token_id), token


def _info(row: sa.Row) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        kind=row.kind,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at),
        last_used_at=utc(row.last_used_at),
        family=row.family,
        user_id=row.user_id,
    )


def get(conn: sa.Connection, token_id: str) -> TokenRecord:
    row = conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"no token with id {token_id!r}")
    return _info(row)


def looks_like_token(text: str) -> bool:
    return TOKEN_PATTERN.fullmatch(text) is not None


def resolve(conn: sa.Connection, token: str, *, kinds: tuple[str, ...]) -> TokenRecord:
    """The record of a usable token of one of ``kinds``; Unauthorized says why not."""
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None or _KIND_OF_PREFIX[match.group(1)] not in kinds:
        raise Unauthorized("unknown token")
    row = conn.execute(
        sa.select(t.tokens).where(t.tokens.c.token_hash == hash_secret(token))
    ).first()
    if row is None:
        raise Unauthorized("unknown token")
    info = _info(row)
    if info.revoked_at is not None:
        raise Unauthorized(f"token {info.id} was revoked")
    if info.expires_at is not None and info.expires_at <= now():
        raise Unauthorized(f"token {info.id} expired at {_iso(info.expires_at)}")
    return info


def mark_used(conn: sa.Connection, token_id: str) -> None:
    """Remember the last use, at most once a minute per token to spare the database."""
    moment = now()
    with writing(conn):
        conn.execute(
            t.tokens.update()
            .where(
                t.tokens.c.id == token_id,
                sa.or_(
                    t.tokens.c.last_used_at.is_(None),
                    t.tokens.c.last_used_at < to_db(moment - USE_RESOLUTION),
                ),
            )
            .values(last_used_at=to_db(moment))
        )


def revoke(conn: sa.Connection, token_id: str, *, user_id: int | None) -> TokenRecord:
    """Revoke a token, its sign-in (family) and every token made with them, at any depth;
    ``user_id`` None means an admin asks."""
    info = get(conn, token_id)
    if user_id is not None and info.user_id != user_id:
        # Somebody else's token is reported exactly like a missing one: ids are not a secret,
        # but whose they are is nobody else's business.
        raise NotFound(f"no token with id {token_id!r}")
    tk = t.tokens.c
    with writing(conn):
        if info.family:
            found = conn.execute(sa.select(tk.id).where(tk.family == info.family)).scalars()
            doomed = set(found)
        else:
            doomed = {token_id}
        frontier = set(doomed)
        while frontier:
            children = set(
                conn.execute(sa.select(tk.id).where(tk.parent_id.in_(sorted(frontier)))).scalars()
            )
            frontier = children - doomed
            doomed |= children
        conn.execute(
            t.tokens.update()
            .where(tk.id.in_(sorted(doomed)), tk.revoked_at.is_(None))
            .values(revoked_at=to_db(now()))
        )
    return get(conn, token_id)


def retire(conn: sa.Connection, token_ids: list[str]) -> None:
    """Revoke exactly these tokens, not what was made with them: a sign-in's rotation
    spends its refresh and access tokens, and the sign-in goes on."""
    with writing(conn):
        conn.execute(
            t.tokens.update()
            .where(t.tokens.c.id.in_(token_ids), t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=to_db(now()))
        )


def family_of(conn: sa.Connection, family: str) -> list[TokenRecord]:
    rows = conn.execute(sa.select(t.tokens).where(t.tokens.c.family == family))
    return [_info(row) for row in rows]


def horizon(conn: sa.Connection, record: TokenRecord) -> datetime | None:
    """When the credential a token stands for ends (None: never). A sign-in's access token
    stands for the sign-in, which ends when its live refresh token expires; any other
    token for itself."""
    if record.kind == "access" and record.family:
        live = [
            member.expires_at
            for member in family_of(conn, record.family)
            if member.kind == "refresh" and member.revoked_at is None
        ]
        if live:
            return max((moment for moment in live if moment is not None), default=None)
    return record.expires_at


def listing(
    conn: sa.Connection, user_id: int, *, include_inactive: bool = False
) -> list[TokenRecord]:
    query = (
        sa.select(t.tokens)
        .where(t.tokens.c.user_id == user_id, t.tokens.c.kind != "refresh")
        .order_by(t.tokens.c.created_at, t.tokens.c.id)
    )
    items = [_info(r) for r in conn.execute(query)]
    if include_inactive:
        return items
    moment = now()
    return [
        i for i in items if i.revoked_at is None and (i.expires_at is None or i.expires_at > moment)
    ]


def new_family() -> str:
    return secrets.token_hex(16)


def id_of(conn: sa.Connection, token: str) -> str | None:
    """The id of the token with this secret, usable or not; None for an unknown one."""
    return conn.execute(
        sa.select(t.tokens.c.id).where(t.tokens.c.token_hash == hash_secret(token))
    ).scalar_one_or_none()
