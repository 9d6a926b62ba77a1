"""The server's own key-value settings (``server_settings``): the admin token's hash and
what an admin changed at run time (alert thresholds, the webhook URL)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from perffarm.server.core.secrets import hash_secret, new_secret
from perffarm.server.store import tables as t
from perffarm.server.store.transactions import writing

ADMIN_HASH_KEY = "admin_token_sha256"
USER_ID_KEY = "user_id_key"
_user_id_keys: dict[str, bytes] = {}
_kv = t.server_settings


def read(conn: sa.Connection, keys: list[str]) -> dict[str, str]:
    rows = conn.execute(sa.select(_kv.c.key, _kv.c.value).where(_kv.c.key.in_(keys))).all()
    return {row.key: row.value for row in rows}


def write(conn: sa.Connection, key: str, value: str) -> None:
    with writing(conn):
        conn.execute(_kv.delete().where(_kv.c.key == key))
        conn.execute(_kv.insert().values(key=key, value=value))


def ensure_admin_token(engine: Engine, given: str | None) -> tuple[str, str | None]:
    """The admin token's hash, and the token itself when it was generated just now.

    A token given on the command line or in the environment wins and is never stored. With
    none given, the first start generates one, stores its hash and returns it to be shown
    once; concurrent first starts agree on whichever insert landed first.
    """
    if given:
        return hash_secret(given), None
    with engine.connect() as conn:
        stored = read(conn, [ADMIN_HASH_KEY]).get(ADMIN_HASH_KEY)
        if stored:
            return stored, None
    token = new_secret()
    try:
        with engine.begin() as conn:
            conn.execute(_kv.insert().values(key=ADMIN_HASH_KEY, value=hash_secret(token)))
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            return read(conn, [ADMIN_HASH_KEY])[ADMIN_HASH_KEY], None
    return hash_secret(token), token


def reset_admin_token(engine: Engine) -> str:
    """Replace the stored admin token with a new one (the old one stops working)."""
    token = new_secret()
    with engine.connect() as conn:
        write(conn, ADMIN_HASH_KEY, hash_secret(token))
    return token


def user_id_key(conn: sa.Connection) -> bytes:
    """This server's key for users' public ids: made by the migrations (0007), kept in the
    database, read once per process."""
    name = conn.engine.url.render_as_string(hide_password=True)
    found = _user_id_keys.get(name)
    if found is None:
        found = _user_id_keys[name] = read(conn, [USER_ID_KEY])[USER_ID_KEY].encode()
    return found
