"""``AsyncClient``: perffarm's HTTP API for asyncio, with the calls, rules and errors of
``Client`` (``sync.py``), each method awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import httpx
import tenacity

from perffarm.client import calls
from perffarm.client._core import HEALTH_PATH, Call, Core, RetryPolicy, Transient, tries
from perffarm.model import RunDocument
from perffarm.model.api import Health, MachineInfo

T = TypeVar("T")
P = ParamSpec("P")


def _typed(
    make: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """A coroutine method that sends the call ``make`` describes."""

    async def method(self: AsyncClient, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.call(make(*args, **kwargs))

    method.__name__ = make.__name__
    method.__doc__ = make.__doc__
    return method


class AsyncClient:
    """One results server, for asyncio: ``AsyncClient("http://farm:8080", token=...)``.

    The arguments are ``Client``'s; ``http`` is an ``httpx.AsyncClient`` of your own, and
    ``sleep`` a coroutine function.
    """

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        machine: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        jitter: float | None = None,
        max_retry_after: float = 60.0,
        check_version: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._core = Core(
            server,
            token=token,
            machine=machine,
            headers=headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            policy=RetryPolicy(retries, backoff, max_backoff, jitter, max_retry_after),
            check_version=check_version,
        )
        self.server = self._core.server
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(
            base_url=self.server,
            headers=self._core.headers,
            timeout=self._core.timeout,
            transport=transport,
        )
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- sending -----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        api: bool = True,
        what: str | None = None,
        idempotent: bool | None = None,
        retries: int | None = None,
        check: bool = True,
        **options: Any,
    ) -> httpx.Response:
        """As ``Client.request``."""
        core = self._core
        if core.must_check_version(path, api):
            await self.health()
        prepared = core.prepare(
            method,
            path,
            api=api,
            what=what,
            idempotent=idempotent,
            retries=retries,
            options=options,
        )
        retrying = tenacity.AsyncRetrying(sleep=self._sleep, **prepared.retry)
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self.http.request(method, prepared.url, **prepared.options)
                    core.raise_if_transient(response)
        except Transient as last:
            response = last.response
        except httpx.HTTPError as failure:
            raise core.unreachable(failure, tries(retrying), prepared.what) from None
        core.finish(response, prepared, tries(retrying), check)
        return response

    async def call(self, call: Call[T], *, retries: int | None = None) -> T:
        """Send one typed call of ``perffarm.client.calls`` and read its answer."""
        response = await self.request(
            call.method,
            call.path,
            api=call.api,
            what=call.what,
            idempotent=call.idempotent,
            retries=retries,
            **call.options,
        )
        return self._core.parse(response, call)

    # -- the API (the calls are described in calls.py) -----------------------------------

    async def health(self) -> Health:
        """As ``Client.health``."""
        response = await self.request(
            "GET", HEALTH_PATH, what="checking its API version", check=False
        )
        return self._core.read_health(response)

    me = _typed(calls.me)
    register_machine = _typed(calls.register_machine)
    approve_machine = _typed(calls.approve_machine)
    machine_grants = _typed(calls.machine_grants)
    grant_machine = _typed(calls.grant_machine)
    ungrant_machine = _typed(calls.ungrant_machine)
    retire_machine = _typed(calls.retire_machine)
    delete_run = _typed(calls.delete_run)
    keep_run = _typed(calls.keep_run)
    delete_project = _typed(calls.delete_project)
    keep_project = _typed(calls.keep_project)
    retention = _typed(calls.retention)
    prune = _typed(calls.prune)
    audit = _typed(calls.audit)
    submit_run = _typed(calls.submit_run)
    submit_runs = _typed(calls.submit_runs)
    run = _typed(calls.run)
    baseline = _typed(calls.baseline)
    loadtest_state = _typed(calls.loadtest_state)
    send_datapoints = _typed(calls.send_datapoints)
    create_loadtest = _typed(calls.create_loadtest)
    start_loadtest = _typed(calls.start_loadtest)
    finish_loadtest = _typed(calls.finish_loadtest)
    mint_loadtest_token = _typed(calls.mint_loadtest_token)
    loadtest_summary = _typed(calls.loadtest_summary)

    async def machines(self) -> AsyncIterator[MachineInfo]:
        """Every machine the credentials may see, page after page."""
        cursor = None
        while True:
            page = await self.call(calls.machines_page(cursor))
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def baseline_runs(self, params: Mapping[str, str]) -> list[RunDocument]:
        """As ``Client.baseline_runs``."""
        return [await self.run(run_id) for run_id in await self.baseline(params)]
