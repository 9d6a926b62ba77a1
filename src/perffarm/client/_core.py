"""What the sync and the async client share, without I/O: the server's URL, the headers,
timeouts, the retry policy (tenacity), reading an error answer into a typed error, and the
API-version check.

Retries: connection errors (and, for requests that may be sent twice, a connection lost
after sending) and the answers 429, 502, 503 and 504 are tried again, ``retries`` times,
waiting ``backoff`` seconds, then twice that, and so on up to ``max_backoff``, each wait
plus a random jitter of up to ``jitter`` seconds (default: ``backoff``) so that many
clients do not come back at the same moment. A ``Retry-After`` the server sends is waited
at least; one longer than ``max_retry_after`` ends the retries at once. 502 and 504 come
from a proxy that may have passed the request on: they are retried only for requests that
may be sent twice (``idempotent``: GET, PUT, DELETE, and the POSTs the server keeps once
by id). Other 4xx and 5xx answers are never retried: asking again would get the same.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx
import tenacity

from perffarm import __version__
from perffarm.client.errors import (
    ApiError,
    ClientError,
    FieldProblem,
    IncompatibleServer,
    ServerUnreachable,
    TooLarge,
    Unavailable,
    error_class,
    one_line,
)
from perffarm.model.api import (
    API_PREFIX,
    API_VERSION,
    API_VERSION_HEADER,
    CLIENT_MIN_SERVER_API,
    Health,
)

T = TypeVar("T")

USER_AGENT = f"perffarm/{__version__} (python-httpx/{httpx.__version__})"
MACHINE_HEADER = "X-Perffarm-Machine"
HEALTH_PATH = "/health"
#: Answers that say "not now": retried.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Of those, the ones that say the server did not handle the request: retried whatever it is.
NOT_HANDLED = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def normalize_server(url: str) -> str:
    """``host:port`` or a URL, as the base URL every request starts with (no final slash)."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait (a number or an HTTP date)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class Transient(Exception):
    """An answer to try again (429, 502, 503, 504), raised inside an attempt."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after(response)


def _reason(exc: BaseException) -> str:
    return one_line(exc, 200) or type(exc).__name__


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to try again; see the module docstring."""

    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 10.0
    jitter: float | None = None
    max_retry_after: float = 60.0

    def tenacity_kwargs(self, idempotent: bool, retries: int | None = None) -> dict[str, Any]:
        """Arguments of tenacity's ``Retrying``/``AsyncRetrying`` (``retries`` overrides
        the policy's for one request)."""
        retries = self.retries if retries is None else retries
        jitter = self.backoff if self.jitter is None else self.jitter
        exponential = tenacity.wait_exponential(
            multiplier=self.backoff, max=self.max_backoff
        ) + tenacity.wait_random(0, jitter)

        def wait(state: tenacity.RetryCallState) -> float:
            pause = float(exponential(state))
            failure = state.outcome.exception() if state.outcome else None
            if isinstance(failure, Transient) and failure.retry_after is not None:
                return max(failure.retry_after, pause)
            return pause

        def again(failure: BaseException) -> bool:
            return self.should_retry(failure, idempotent)

        return {
            "stop": tenacity.stop_after_attempt(retries + 1),
            "wait": wait,
            "retry": tenacity.retry_if_exception(again),
            "reraise": True,
        }

    def should_retry(self, failure: BaseException, idempotent: bool) -> bool:
        if isinstance(failure, Transient):
            if failure.retry_after is not None and failure.retry_after > self.max_retry_after:
                return False
            return idempotent or failure.response.status_code in NOT_HANDLED
        if isinstance(failure, httpx.UnsupportedProtocol):
            return False
        if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return True  # never sent: always safe to send again
        return idempotent and isinstance(failure, httpx.TransportError)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One typed request of the API: what to send, what it is for (in messages), and how
    to read the answer."""

    method: str
    path: str
    what: str
    parse: Callable[[httpx.Response], T]
    api: bool = True
    idempotent: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    what: str
    url: str
    options: dict[str, Any]
    retry: dict[str, Any]


class Core:
    """The state and the rules both clients use; they add only the sending."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None,
        machine: str | None,
        headers: Mapping[str, str] | None,
        timeout: float,
        connect_timeout: float,
        policy: RetryPolicy,
        check_version: bool,
    ) -> None:
        self.server = normalize_server(server)
        try:
            parsed = httpx.URL(self.server)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ClientError(f"{server!r} is not a server URL ({_reason(exc)})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ClientError(
                f"{server!r} is not a results server URL: give http://HOST:PORT or https://HOST"
            )
        self._origin = (parsed.scheme, parsed.host, parsed.port)
        #: Sent with every request (and set on the httpx client the client makes).
        self.headers: dict[str, str] = {
            "User-Agent": USER_AGENT,
            API_VERSION_HEADER: str(API_VERSION),
        }
        #: Credentials and the caller's own headers: sent to this server only, never to
        #: another one an answer names (an OAuth endpoint behind a proxy, say).
        self.private_headers: dict[str, str] = {}
        if token:
            self.private_headers["Authorization"] = f"Bearer {token}"
        if machine:
            self.private_headers[MACHINE_HEADER] = machine
        self.private_headers.update(headers or {})
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self.policy = policy
        self.check_version = check_version
        self.health: Health | None = None

    # -- requests --------------------------------------------------------------------

    def url(self, path: str, api: bool) -> str:
        """``path`` under ``/api/v1`` (``api``) or under the server's root; a full URL (an
        OAuth endpoint the server named) as it is."""
        if "://" in path:
            return path
        return f"{self.server}{API_PREFIX if api else ''}{path}"

    def prepare(
        self,
        method: str,
        path: str,
        *,
        api: bool,
        what: str | None,
        idempotent: bool | None,
        retries: int | None,
        options: dict[str, Any],
    ) -> Prepared:
        """Everything a client needs to send one request, its retries included."""
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        url = self.url(path, api)
        private = self.private_headers if self.same_origin(url) else {}
        options["headers"] = {**self.headers, **private, **(options.get("headers") or {})}
        return Prepared(
            what=what or f"answering {method.upper()} {path}",
            url=url,
            options=options,
            retry=self.policy.tenacity_kwargs(idempotent, retries),
        )

    def finish(self, response: httpx.Response, prepared: Prepared, tries: int, check: bool) -> None:
        """After the last try: the typed error of an error answer (unless not ``check``)."""
        if check and response.status_code >= 400:
            raise self.error(response, prepared.what, tries)

    def same_origin(self, url: str) -> bool:
        try:
            other = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        return (other.scheme, other.host, other.port) == self._origin

    def raise_if_transient(self, response: httpx.Response) -> None:
        """Inside an attempt: an answer worth another try becomes Transient."""
        if response.status_code in RETRY_STATUSES:
            raise Transient(response)

    def must_check_version(self, path: str, api: bool) -> bool:
        """Whether to read the server's API version before sending this request."""
        return self.check_version and self.health is None and not (api and path == HEALTH_PATH)

    # -- failures --------------------------------------------------------------------

    def unreachable(self, failure: BaseException, tries: int, what: str) -> ClientError:
        if isinstance(failure, httpx.UnsupportedProtocol):
            return ClientError(
                f"{self.server} is not a results server URL ({_reason(failure)}): "
                "give http://HOST:PORT or https://HOST"
            )
        if not isinstance(failure, httpx.TransportError):
            # An answer httpx could not decode (a bad gzip body, endless redirects).
            return IncompatibleServer(
                f"the results server at {self.server} sent an answer that cannot be read "
                f"while {what} ({_reason(failure)}): check --server"
            )
        plural = "try" if tries == 1 else "tries"
        return ServerUnreachable(
            f"cannot reach the results server at {self.server} ({_reason(failure)}, "
            f"{tries} {plural}): check that it runs and that --server is right, then run "
            "the command again",
            tries=tries,
        )

    def error(self, response: httpx.Response, what: str, tries: int = 1) -> ApiError:
        """The typed error of an error answer, its message one line saying what to do."""
        status = response.status_code
        detail, problems = read_error_body(response)
        kind = error_class(status)
        server = f"the results server at {self.server}"
        wait = retry_after(response)
        if kind is Unavailable:
            if wait is not None and wait > self.policy.max_retry_after:
                when = f"asks to wait {wait:.0f} s"
            else:
                when = f"still so after {tries} {'try' if tries == 1 else 'tries'}"
            message = (
                f"{server} is busy or unavailable (HTTP {status}: {detail}) while {what}, "
                f"{when}: retry later"
            )
        elif kind is TooLarge:
            message = (
                f"{server} refused {what}: the request is larger than it takes "
                f"({detail}; ask its admin for a larger --max-body)"
            )
        elif status == 401:
            message = (
                f"{server} refused the credentials while {what}: {detail} (check the "
                "machine's secret or the token: `perffarm machine register` or "
                "`perffarm login` again)"
            )
        elif status == 403:
            message = (
                f"{server} does not allow {what}: {detail} (these credentials lack the right; "
                "an admin can grant it)"
            )
        elif status == 404:
            message = f"{server} has no such thing while {what}: {detail}"
        elif status == 409:
            message = f"{server} refused {what} (conflict): {detail}"
        elif status in (400, 422):
            message = f"{server} refused {what} as invalid: {detail}"
        elif status >= 500:
            message = (
                f"{server} failed (HTTP {status}: {detail}) while {what}: retry later or ask "
                "its admin to look at its log"
            )
        else:
            message = f"{server} answered HTTP {status} while {what}: {detail}"
        return kind(message, status=status, detail=detail, errors=problems, retry_after=wait)

    # -- answers ---------------------------------------------------------------------

    def parse(self, response: httpx.Response, call: Call[T]) -> T:
        """The answer of a typed call, or IncompatibleServer when it cannot be read."""
        try:
            return call.parse(response)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise IncompatibleServer(
                f"the results server at {self.server} answered {call.what} with something "
                f"this perffarm cannot read ({_reason(exc)}): check --server, and that "
                "perffarm here and on the server are of the same release"
            ) from None

    def read_health(self, response: httpx.Response) -> Health:
        """The server's health, refusing a server whose API this client does not speak."""
        where = f"{API_PREFIX}{HEALTH_PATH}"
        if response.status_code == 404:
            raise IncompatibleServer(
                f"{self.server} does not answer {where}: it is not a perffarm results server, "
                "or one too old for this perffarm (check --server, or upgrade the server)"
            )
        if response.status_code >= 400:
            raise self.error(response, "checking its API version")
        try:
            data = response.json()
            api_version = int(data["api_version"])
            min_client = int(data.get("min_client_api_version", 1))
            known = {k: v for k, v in data.items() if k in Health.model_fields}
            health = Health.model_validate(known)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            raise IncompatibleServer(
                f"{self.server} answered {where} with something that is not a perffarm "
                "health answer: check --server"
            ) from None
        if api_version < CLIENT_MIN_SERVER_API:
            raise IncompatibleServer(
                f"the results server at {self.server} is too old (API {api_version}; this "
                f"perffarm needs API {CLIENT_MIN_SERVER_API} or newer): upgrade the server"
            )
        if min_client > API_VERSION:
            raise IncompatibleServer(
                f"the results server at {self.server} is too new (it needs clients of API "
                f"{min_client} or newer; this perffarm speaks API {API_VERSION}): "
                "upgrade perffarm on this machine"
            )
        self.health = health
        return health


def tries(retrying: tenacity.Retrying | tenacity.AsyncRetrying) -> int:
    """How many times the request was sent."""
    return int(retrying.statistics.get("attempt_number", 1))


def read_error_body(response: httpx.Response) -> tuple[str, list[FieldProblem]]:
    """The server's explanation (``{"detail", "errors"}``, or OAuth's ``error`` and
    ``error_description``) as one line, and its field errors; whatever the body is."""
    reason = response.reason_phrase or ""
    fallback = f"HTTP {response.status_code}" + (f" {reason}" if reason else "")
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    problems: list[FieldProblem] = []
    detail: object = None
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error_description") or body.get("error")
        if isinstance(detail, list):
            # FastAPI's own shape: [{"loc": [...], "msg": "..."}]
            detail = "; ".join(
                one_line(item.get("msg", item) if isinstance(item, dict) else item, 100)
                for item in detail[:3]
            )
        errors = body.get("errors")
        if isinstance(errors, list):
            for item in errors[:50]:
                if isinstance(item, dict):
                    problems.append(
                        FieldProblem(
                            one_line(item.get("field", ""), 200),
                            one_line(item.get("message", ""), 200),
                        )
                    )
    elif body is None and response.headers.get("content-type", "").startswith("text/plain"):
        detail = response.text
    text = one_line(detail) if detail not in (None, "", [], {}) else ""
    return text or fallback, problems
