"""The results server's ASGI application: ``create_app(settings)``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from perffarm import __version__
from perffarm.model.api import API_PREFIX, ErrorBody, FieldError
from perffarm.server import detection, loadtests
from perffarm.server.api import auth_web, meta, runs, series
from perffarm.server.api import machines as machines_api
from perffarm.server.api import projects as projects_api
from perffarm.server.api import users as users_api
from perffarm.server.auth import ensure_admin_token
from perffarm.server.body import BodyMiddleware
from perffarm.server.db import migrate
from perffarm.server.db.engine import make_engine
from perffarm.server.ingest import Ingestor
from perffarm.server.oauth import router as oauth_router
from perffarm.server.oidc import OidcClient
from perffarm.server.security import (
    AuthMiddleware,
    RateLimiter,
    SecurityHeadersMiddleware,
    install_log_filter,
)
from perffarm.server.settings import Settings
from perffarm.web.routes import install as web_install


def _error(status: int, detail: str, errors: list[FieldError] | None = None, **kw) -> JSONResponse:  # type: ignore[no-untyped-def]
    body = ErrorBody(detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(), status_code=status, **kw)


def _field(loc: tuple[object, ...] | list[object]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


def _grpc_serving(app: FastAPI, settings: Settings) -> AbstractAsyncContextManager[object]:
    """The gRPC services (server/grpc/) on the app's event loop, when an address is set."""
    if not settings.grpc_address:
        return nullcontext()
    from perffarm.server.grpc.server import serving

    return serving(app, settings)


def create_app(settings: Settings, *, migrate_database: bool = True) -> FastAPI:
    """Build the app; with ``migrate_database`` the database is brought up to date first."""
    engine = make_engine(settings.url)
    if migrate_database:
        migrate.upgrade(engine)
    else:
        migrate.check_not_newer(engine)
    admin_hash, _ = ensure_admin_token(engine, settings.admin_token)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything alive now (modules, the app, the engine) lives as long as the process:
        # moving it out of the collector's sight shortens the pauses that make tail latency.
        gc.collect()
        gc.freeze()
        detection.start(_app)
        async with loadtests.running(_app), _grpc_serving(_app, settings):
            yield
        detection.stop(_app)
        engine.dispose()

    app = FastAPI(
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
    app.state.ingestor = Ingestor(engine)
    app.state.admin_hash = admin_hash
    app.add_middleware(BodyMiddleware, max_body=settings.max_body)
    app.add_middleware(AuthMiddleware, private=settings.private)
    app.add_middleware(SecurityHeadersMiddleware)
    app.state.signin_limiter = RateLimiter(limit=10, window=60.0)
    app.state.oidc_clients = {p.name: OidcClient(p) for p in settings.oidc_providers}
    install_log_filter()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [FieldError(field=_field(e["loc"]), message=e["msg"]) for e in exc.errors()]
        shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return _error(422, f"invalid request: {shown}{more}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(sa.exc.OperationalError)
    async def _database_down(_request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        # A database that is unreachable or busy is a temporary state: 503 tells clients
        # to retry, where a 500 would say the request itself is at fault.
        return _error(503, "the database is unavailable; retry later", headers={"Retry-After": "1"})

    @app.exception_handler(sa.exc.DataError)
    async def _unstorable(_request: Request, exc: sa.exc.DataError) -> JSONResponse:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return _error(422, f"a value the database cannot use: {reason}")

    for router in (
        meta.router,
        runs.router,
        series.router,
        machines_api.router,
        users_api.router,
        projects_api.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(oauth_router)
    app.include_router(auth_web.router)
    web_install(app)
    loadtests.install(app, engine)
    detection.install(app, engine)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes; ``perffarm server`` has migrated already."""
    return create_app(Settings.from_env(), migrate_database=False)
