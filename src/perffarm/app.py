"""The composition root of the results server: ``create_app(settings)`` builds the ASGI app
from the server's routers, services and background workers and the web dashboard.

It sits above ``server`` and ``web`` (like a command), so that neither installs itself into
the app: every router, handler, middleware and background worker is named here, once.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from perffarm import __version__, redact
from perffarm.model.api import API_PREFIX
from perffarm.server.http import alerts as alerts_api
from perffarm.server.http import (
    errors,
    loadtests_compat,
    meta,
    metrics,
    oauth,
    runs,
    series,
    signin,
)
from perffarm.server.http import lifecycle as lifecycle_api
from perffarm.server.http import loadtests as loadtests_api
from perffarm.server.http import machines as machines_api
from perffarm.server.http import projects as projects_api
from perffarm.server.http import users as users_api
from perffarm.server.http.body import BodyMiddleware
from perffarm.server.http.fastput import FastMetricsPut
from perffarm.server.http.middleware import AuthMiddleware, SecurityHeadersMiddleware
from perffarm.server.http.openapi import with_error_answers
from perffarm.server.http.ratelimit import RateLimiter
from perffarm.server.services import loadtests
from perffarm.server.services.alert_settings import load_settings
from perffarm.server.services.detection import DetectionWorker
from perffarm.server.services.ingest import Ingestor
from perffarm.server.services.lifecycle import WORKER_PAUSE, Retention, RetentionWorker
from perffarm.server.services.notifiers import Notifiers
from perffarm.server.settings import Settings
from perffarm.server.store import migrate
from perffarm.server.store.engine import make_engine
from perffarm.server.store.ratelimits import DatabaseStorage
from perffarm.server.store.server_settings import ensure_admin_token
from perffarm.web import routes as web

SERVER_LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "perffarm", "httpx")


class ResultsServer(FastAPI):
    """The app, with the load-test routes' fast path outermost: ahead of every middleware
    (which it skips only for requests they would have passed unchanged) and of the
    framework's own layers."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = with_error_answers(super().openapi())
        return self.openapi_schema

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        settings: Settings = self.state.settings
        return FastMetricsPut(
            stack, server=self, max_body=settings.max_body, private=settings.private
        )


def _grpc_serving(app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[object]:
    """The gRPC services (server/grpc/) on the app's event loop, when an address is set."""
    if not settings.grpc_address:
        return nullcontext()
    from perffarm.server.grpc.server import serving

    return serving(app, settings)


def _detection(engine: Engine, ingestor: Ingestor) -> DetectionWorker:
    """The change-point worker, fed by ingest, announcing new alert groups to every notifier
    (perffarm.notifiers: the webhook and any installed plug-in)."""

    def webhook_url() -> str | None:
        with engine.connect() as conn:
            return load_settings(conn).webhook_url

    sender = Notifiers(webhook_url)
    worker = DetectionWorker(engine, on_new_groups=sender.enqueue_groups)
    worker.webhooks = sender
    ingestor.on_stored = worker.enqueue_runs
    return worker


def _oidc_clients(settings: Settings) -> dict[str, Any]:
    """A client per OpenID Connect provider; the OAuth library is loaded only for them."""
    if not settings.oidc_providers:
        return {}
    from perffarm.server.services.oidc import OidcClient

    return {p.name: OidcClient(p) for p in settings.oidc_providers}


def create_app(settings: Settings, *, migrate_database: bool = True) -> FastAPI:
    """Build the app; with ``migrate_database`` the database is brought up to date first."""
    engine = make_engine(settings.url)
    if migrate_database:
        migrate.upgrade(engine)
    else:
        migrate.check_not_newer(engine)
    admin_hash, _ = ensure_admin_token(engine, settings.admin_token)
    ingestor = Ingestor(engine)
    detection = _detection(engine, ingestor)
    retention = RetentionWorker(
        Retention(engine, settings.retention, pause=WORKER_PAUSE),
        interval=settings.retention_interval,
        first_after=min(60.0, settings.retention_interval),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything alive now (modules, the app, the engine) lives as long as the process:
        # moving it out of the collector's sight shortens the pauses that make tail latency.
        gc.collect()
        gc.freeze()
        detection.start()
        retention.start()
        if detection.webhooks is not None:
            detection.webhooks.start()
        async with loadtests.running(_app), _grpc_serving(_app, settings):
            yield
        retention.stop()
        detection.stop()
        if detection.webhooks is not None:
            detection.webhooks.stop()
        engine.dispose()

    app = ResultsServer(
        title="perffarm results server",
        version=__version__,
        description="Run documents from perffarm agents: ingest, series, runs and machines.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.ingestor = ingestor
    app.state.detection = detection
    app.state.retention = retention
    app.state.admin_hash = admin_hash
    # Shared by every server process through the database, so more workers give an
    # attacker no more attempts.
    shared = DatabaseStorage(engine)
    app.state.signin_limiter = RateLimiter(limit=10, window=60.0, storage=shared)
    app.state.device_limiters = (
        RateLimiter(10, 60.0, shared, what="sign-in requests from this address"),
        RateLimiter(120, 60.0, shared, what="sign-in requests"),
    )
    app.state.oidc_clients = _oidc_clients(settings)
    app.add_middleware(BodyMiddleware, max_body=settings.max_body)
    app.add_middleware(AuthMiddleware, private=settings.private)
    app.add_middleware(SecurityHeadersMiddleware)
    # Access logs show query strings: tokens, codes and passwords are hidden in every line.
    redact.install(SERVER_LOGGERS)
    errors.install(app)

    # Routes are matched in order, and a farm has a hundred: the original load-test
    # harness's routes take thousands of PUTs a second, so they go first (their paths are
    # theirs alone: /test/..., /status).
    loadtests.install(app, engine)
    app.include_router(loadtests_compat.router)
    for router in (
        meta.router,
        runs.router,
        series.router,
        machines_api.router,
        users_api.router,
        projects_api.router,
        alerts_api.router,
        loadtests_api.router,
        lifecycle_api.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(metrics.router)
    app.include_router(oauth.router)
    app.include_router(signin.router)
    app.include_router(web.router())
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes; ``perffarm server`` has migrated already."""
    return create_app(Settings.from_env(), migrate_database=False)
