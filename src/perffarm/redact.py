"""The one rule for keeping secrets out of logs and files: what a secret looks like, which
values of a ``secure.yaml`` are secrets, and the logging filter that hides them.

Two kinds of secret are hidden:

- **known values** (the suites' ``secure.yaml``, chosen by ``secret_values``), wherever they
  appear, replaced by ``***`` (the marker the run documents use);
- **what looks like a secret** whatever its value: perffarm tokens (``pft_…``, ``pfa_…``,
  ``pfr_…``), ``Bearer …`` credentials, query or form parameters such as ``token=``,
  ``code=``, ``password=``, and JSON fields such as ``"password": "…"``.

A value already hidden is left as it is (``password=***`` stays so). A leaf module: it
imports nothing of perffarm, so the server, the agent and the commands can all use it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

HIDDEN_VALUE = "***"
HIDDEN = "[hidden]"
HIDDEN_TOKEN = "[token]"
# What a replacement leaves: never hidden a second time.
_MARKERS = frozenset({HIDDEN_VALUE, HIDDEN, HIDDEN_TOKEN})

_KEYS = (
    "code|state|device_code|refresh_token|access_token|token|password|secret|"
    "code_verifier|csrf_token"
)
_JSON_KEYS = "password|secret|token|access_token|refresh_token"

# (pattern, group of the secret): the secret group is replaced, the rest kept. No \b before
# a token or key: "xpft_…" or "mytoken=…" must not slip through for want of a word boundary.
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # perffarm tokens: pf + kind (t: API token, a: access, r: refresh, lt: a load test's)
    # + id + secret.
    (re.compile(r"(?P<secret>pf(?:[tar]|lt)_[A-Za-z0-9]{12}_[A-Za-z0-9_-]+)"), HIDDEN_TOKEN),
    # A machine credential NAME:SECRET anywhere, a URL path included (secrets are 256-bit,
    # 43 URL-safe characters; nothing shorter is taken for one).
    (re.compile(r"[A-Za-z0-9._-]:(?P<secret>[A-Za-z0-9_-]{40,})(?![A-Za-z0-9_-])"), HIDDEN),
    (re.compile(r"(?i)bearer\s+(?P<secret>[^\s\"',]+)"), HIDDEN),
    (re.compile(rf"(?i)(?:{_KEYS})=(?P<secret>[^&\s\"']+)"), HIDDEN),
    # A JSON string value, escaped quotes included.
    (re.compile(rf'(?i)"(?:{_JSON_KEYS})"\s*:\s*"(?P<secret>(?:[^"\\]|\\.)*)'), HIDDEN),
)


def _hide(replacement: str) -> Callable[[re.Match[str]], str]:
    def hide(match: re.Match[str]) -> str:
        secret = match.group("secret")
        if secret in _MARKERS:
            return match.group(0)
        start, end = match.span("secret")
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + replacement + whole[end - offset :]

    return hide


_REPLACERS = tuple((pattern, _hide(replacement)) for pattern, replacement in SECRET_PATTERNS)


# Which values of a secure.yaml are secrets (docs/suites.md, "Which values are hidden").
# Shorter values are too common to be told from ordinary text ("admin", "spice").
MIN_SECRET_LENGTH = 6
# A key named so (or ending so: db_user, remote-host) says who or where, not a credential.
IDENTITY_KEYS = frozenset({"user", "username", "host", "hostname", "port", "database", "dbname"})
_LOCAL_HOST_NAMES = frozenset({"localhost", "localhost.localdomain"})
_KEY_WORDS = re.compile(r"[^a-z0-9]+")
_NUMBER = re.compile(r"[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


def secret_values(secure: Mapping[str, Any]) -> list[str]:
    """The values of a ``secure.yaml`` mapping that are hidden, longest first (then in
    alphabetical order).

    Every text value at any depth is a secret, unless it is under an identity key
    (``IDENTITY_KEYS``), shorter than ``MIN_SECRET_LENGTH``, a number, or a local address
    (``127.0.0.1``, ``::1``, ``localhost``). Numbers, booleans and dates as YAML reads them
    are settings (``port: 22``), never secrets.
    """
    found: set[str] = set()
    _collect(secure, None, found)
    return sorted(found, key=lambda value: (-len(value), value))


def _collect(value: Any, key: str | None, into: set[str]) -> None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            _collect(item, str(name), into)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, key, into)
    elif isinstance(value, str) and is_secret(value, key):
        into.add(value)


def is_secret(value: str, key: str | None = None) -> bool:
    """Whether a ``secure.yaml`` text value under ``key`` is hidden (see ``secret_values``)."""
    words = _KEY_WORDS.split(key.lower()) if key else []
    if words and (words[-1] in IDENTITY_KEYS or words[-2:] == ["user", "name"]):
        return False
    text = value.strip()
    if len(text) < MIN_SECRET_LENGTH or text.lower() in _LOCAL_HOST_NAMES or _NUMBER.match(text):
        return False
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return True
    return not (address.is_loopback or address.is_unspecified)


def hide_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret value replaced by ``***``; longest first, so that a
    secret holding a shorter one goes whole."""
    for value in sorted({value for value in secrets if value}, key=len, reverse=True):
        text = text.replace(value, HIDDEN_VALUE)
    return text


def hide_values_in_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    """``hide_values`` for bytes (an output, a log, an attachment): each secret's UTF-8 form."""
    marker = HIDDEN_VALUE.encode("ascii")
    for value in sorted({value for value in secrets if value}, key=len, reverse=True):
        data = data.replace(value.encode("utf-8"), marker)
    return data


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value (``hide_values``) and everything that looks
    like a secret hidden."""
    text = hide_values(text, secrets)
    for pattern, hide in _REPLACERS:
        text = pattern.sub(hide, text)
    return text


class RedactingFilter(logging.Filter):
    """Hides secrets in every record that passes: its message and its traceback.

    ``secrets`` are the known values (change them at any time). A record's arguments are
    hidden one by one when that gives the same line as hiding the whole message, so that
    formatters reading ``record.args`` (uvicorn's access log) keep working; otherwise the
    record carries the hidden message and no arguments.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format string: logging reports it itself
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            self._replace_message(record, cleaned)
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True

    def _replace_message(self, record: logging.LogRecord, cleaned: str) -> None:
        args = record.args
        if isinstance(args, tuple) and isinstance(record.msg, str):
            hidden = tuple(
                redact(arg, self.secrets) if isinstance(arg, str) else arg for arg in args
            )
            try:
                fits = redact(record.msg, self.secrets) % hidden == cleaned
            except (TypeError, ValueError, KeyError):
                fits = False
            if fits:
                record.msg, record.args = redact(record.msg, self.secrets), hidden
                return
        record.msg, record.args = cleaned, None


def install(names: Iterable[str], secrets: Iterable[str] = ()) -> RedactingFilter:
    """Put one ``RedactingFilter`` on each named logger ("" is the root) and on each of its
    handlers; idempotent: where one is already, it stays and is given ``secrets``.

    A logger's own filter sees only what is logged to it by name; a handler's sees every
    record it writes, the ones its children propagate included. Returns the filter of the
    first logger.
    """
    values = list(secrets)
    first: RedactingFilter | None = None
    for name in names:
        logger = logging.getLogger(name)
        for owner in (logger, *logger.handlers):
            found = next((f for f in owner.filters if isinstance(f, RedactingFilter)), None)
            if found is None:
                found = RedactingFilter(values)
                owner.addFilter(found)
            else:
                found.secrets = list(values)
            if first is None:
                first = found
    return first if first is not None else RedactingFilter(values)


def set_secrets(logger: logging.Logger, secrets: Iterable[str]) -> None:
    """The known secret values of every ``RedactingFilter`` on ``logger`` and its handlers."""
    values = list(secrets)
    for owner in (logger, *logger.handlers):
        for item in owner.filters:
            if isinstance(item, RedactingFilter):
                item.secrets = list(values)
