"""One view, two renderers: a dashboard page is declared once, as a ``Page``, and
``Site.add`` gives it its two routes.

- ``GET {path}``: the page, the view's data rendered with the page's template; a domain
  error is an error page (NotFound: 404, Invalid: 422 "Bad query").
- ``GET /api/v1/views{path}``: its JSON twin, the same data as JSON; a domain error is the
  API's JSON error (``detail``, the same status) through the app's error handlers.

Both routes take the page's parameters from the same FastAPI dependency (``params``), read
from the same source (``source``: a connection and who is asking, or the load-test store)
and call the same view, so they cannot disagree on what a parameter means, who may see
what, or what is cached. A view is a plain function ``view(source, params) -> data``.

A ``Page`` without a template is a JSON view alone (the timeline's data, a point's
details). Pages that are only HTML (forms, redirects, downloads, the timeline's frame)
are plain routes in ``routes.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from perffarm.server import permissions
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.http import routetable
from perffarm.web.encode import to_json
from perffarm.web.render import error_page, not_found, render

S = TypeVar("S")
"""What the view reads from."""
A = TypeVar("A")
"""The page's parameters."""
D = TypeVar("D")
"""The page's data."""


@dataclass(frozen=True)
class Page(Generic[S, A, D]):
    """One page of the dashboard and its JSON twin."""

    path: str
    """Under ``/`` for the page and under ``/api/v1/views`` for its twin."""
    name: str
    """The routes are named ``{name}_page`` and ``{name}_twin``."""
    source: Callable[..., Awaitable[S]]
    """An async FastAPI dependency (it does no I/O): what the view reads from."""
    params: Callable[..., Awaitable[A]]
    """An async FastAPI dependency (it does no I/O): the page's parameters, parsed."""
    view: Callable[[S, A], D]
    """The page's data; its docstring describes the twin in the OpenAPI document. The twin
    writes it as JSON, or as it is when it is JSON already (bytes)."""
    template: str | None = None
    """None: a JSON view with no page."""
    title: str | Callable[[A, D], str] = ""
    context: Callable[[Request, A, D], Mapping[str, Any]] | None = None
    """The template's context besides the title; default: the data's own keys."""
    missing: Callable[[A, NotFound], str] | None = None
    """What the page says when the view finds nothing; default: the error's message."""
    form: Callable[[Request, S, A], Response | None] | None = None
    """The page only: asked first, it may answer instead of the view (a form to choose
    what to show when the parameters name nothing)."""
    page_path: str | None = None
    """The page's path when it is not ``path`` (the home page, ``/``)."""
    rule: permissions.Rule | None = None
    """Who may call the page and its twin (``server/permissions.py``); the view asks the
    rule itself (a page without one is found by the permission matrix test)."""


def json_response(data: Any) -> Response:
    # orjson or pydantic-core, several times faster than json.dumps on 100,000-number
    # columns, which is what keeps a big timeline under its time budget.
    body = data if isinstance(data, bytes) else to_json(data)
    return Response(body, media_type="application/json")


def _fields(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError("a page whose data is not a mapping needs a context function")
    return data


class Site:
    """The dashboard's routes: ``pages`` (HTML, not in the OpenAPI document) and ``twins``
    (JSON, mounted under the API's prefix)."""

    def __init__(self) -> None:
        self.pages = APIRouter(include_in_schema=False)
        self.twins = APIRouter(prefix="/views", tags=["dashboard"])
        self.declared: list[Page[Any, Any, Any]] = []

    def add(self, page: Page[S, A, D]) -> Page[S, A, D]:
        """Route ``page`` (and its twin); returns it, so that a declaration reads
        ``NAME = site.add(Page(...))``."""
        self._add_twin(page)
        if page.template is not None:
            self._add_page(page, page.template)
        self.declared.append(page)
        return page

    def _add_twin(self, page: Page[S, A, D]) -> None:
        def twin(
            source: Any = Depends(page.source), params: Any = Depends(page.params)
        ) -> Response:
            return json_response(page.view(source, params))

        self.twins.add_api_route(
            page.path,
            twin,
            methods=["GET"],
            name=f"{page.name}_twin",
            description=inspect.getdoc(page.view) or "",
            openapi_extra=routetable.rule(page.rule) if page.rule else None,
        )

    def _add_page(self, page: Page[S, A, D], template: str) -> None:
        def html(
            request: Request,
            source: Any = Depends(page.source),
            params: Any = Depends(page.params),
        ) -> Response:
            if page.form is not None:
                chosen = page.form(request, source, params)
                if chosen is not None:
                    return chosen
            try:
                data = page.view(source, params)
            except NotFound as exc:
                message = page.missing(params, exc) if page.missing is not None else str(exc)
                return not_found(request, message)
            except Invalid as exc:
                return error_page(request, 422, "Bad query", str(exc))
            title = page.title if isinstance(page.title, str) else page.title(params, data)
            context = (
                page.context(request, params, data) if page.context is not None else _fields(data)
            )
            return render(request, template, title=title, **context)

        self.pages.add_api_route(
            page.page_path or page.path,
            html,
            methods=["GET"],
            name=f"{page.name}_page",
            response_class=HTMLResponse,
            openapi_extra=routetable.rule(page.rule) if page.rule else None,
        )
