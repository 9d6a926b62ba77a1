"""The dashboard's pages and their JSON twins (``/api/v1/views/...``), each declared once
(``site.Page``), and the few routes that are only HTML: the timeline's frame, the run
download, a result's redirect, the admin's approve form.

``router()`` is the one entry point: the composition root (``perffarm.app``) mounts what
it returns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from perffarm.model.api import API_PREFIX
from perffarm.server import permissions
from perffarm.server.core.errors import Forbidden, Invalid, NotFound, Unauthorized
from perffarm.server.core.principal import Principal
from perffarm.server.http import oauth
from perffarm.server.http.csrf import CSRF_FIELD, csrf_ok
from perffarm.server.http.deps import connection, principal
from perffarm.server.http.routetable import rule
from perffarm.server.store import machines as machine_store
from perffarm.server.store import results as result_store
from perffarm.server.store import runs as run_store
from perffarm.web import params
from perffarm.web.render import compile_all, error_page, not_found, render
from perffarm.web.site import Page, Site
from perffarm.web.views import (
    Reader,
    compare,
    data,
    home,
    loadtests,
    machines,
    people,
    runs,
    timeline,
)

STATIC = Path(__file__).parent / "static"
site = Site()

# -- home -------------------------------------------------------------------------------------

HOME = site.add(
    Page(
        path="/home",
        rule=permissions.ANYONE,
        name="home",
        source=params.reader,
        params=params.nothing,
        view=home.home,
        template="home.html",
        title="perffarm",
        page_path="/",
    )
)

# -- one run ----------------------------------------------------------------------------------


def environment_groups(document: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each environment section as (name, [(key, value text)]), nested keys flattened."""

    def flatten(prefix: str, value: Any, into: list[tuple[str, str]]) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, inner in enumerate(value):
                flatten(f"{prefix}[{index}]", inner, into)
        else:
            into.append((prefix, value if isinstance(value, str) else json.dumps(value)))

    groups = []
    for name, section in sorted((document.get("environment") or {}).get("sections", {}).items()):
        items: list[tuple[str, str]] = []
        flatten("", section, items)
        groups.append((name, items))
    return groups


def _run_context(_request: Request, run_id: str, view: dict[str, Any]) -> dict[str, Any]:
    document = view["document"]
    chart_series = [
        {"name": s["name"], "unit": s["unit"], "t": s["t"], "values": s["values"]}
        for s in document.get("series") or []
    ]
    return {
        "run_id": run_id,
        "doc": document,
        "view": view,
        "environment": environment_groups(document),
        "chart_series": chart_series,
    }


RUN = site.add(
    Page(
        path="/runs/{run_id}",
        rule=permissions.ANYONE,
        name="run",
        source=params.reader,
        params=params.run_id,
        view=runs.run,
        template="run.html",
        title=lambda run_id, view: f"Run {run_id[:8]} · {view['document']['project']}",
        context=_run_context,
        missing=lambda run_id, _: f"There is no run {run_id} (or its machine is not approved).",
    )
)


@site.pages.get("/runs/{run_id}/run.json", openapi_extra=rule(permissions.ANYONE))
def run_download(
    run_id: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Response:
    """The run document exactly as stored, as a file to save."""
    text = run_store.run_document(conn, run_id, admin=who.admin, viewer=who.viewer)
    return Response(
        text,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.json"'},
    )


@site.pages.get("/results/{result_id}", openapi_extra=rule(permissions.ANYONE))
def result_redirect(
    result_id: int = Depends(params.result_id), read: Reader = Depends(params.reader)
) -> Response:
    """A timeline point links here: the run the result belongs to."""
    return RedirectResponse(f"/runs/{runs.result_run(read, result_id)}", status_code=303)


# -- timeline ---------------------------------------------------------------------------------

# The page loads a long line in pieces of this many points, newest first: each answer stays
# small and fast, and the chart is drawn (and usable) with the first.
TIMELINE_CHUNK = 20_000


@site.pages.get("/timeline", response_class=HTMLResponse, openapi_extra=rule(permissions.ANYONE))
def timeline_page(
    request: Request,
    project: str | None = None,
    benchmark: str | None = None,
    metric: str | None = None,
    params_: str | None = Query(None, alias="params"),
    machine: list[str] | None = Query(None),
    branch: list[str] | None = Query(None),
    x: str = "commit",
    commits: bool | None = None,
    chunk: int = Query(TIMELINE_CHUNK, ge=1, le=timeline.MAX_TIMELINE_POINTS),
    conn: sa.Connection = Depends(params.database),
) -> HTMLResponse:
    """A frame: the chart's data comes from the twins, fetched by the browser, so the HTML
    answers at once whatever the size of the series. Without a series: the series to pick
    from (whose twin is ``/views/series-keys``)."""
    if not (project and benchmark and metric):
        choices = timeline.series_choices(conn, project)
        return render(
            request, "timeline_pick.html", title="Timeline", project=project, choices=choices
        )
    query = timeline.TimelineQuery(
        project=project,
        benchmark=benchmark,
        metric=metric,
        params=params_,
        machines=params.several(machine),
        branches=params.several(branch),
        x=params.check_x(x),
        commits=commits,
    )
    try:
        canonical = result_store.parse_params(params_)
    except Invalid as exc:
        return error_page(request, 422, "Bad query", str(exc))
    twin_query = [
        ("project", project),
        ("benchmark", benchmark),
        ("metric", metric),
        ("params", canonical),
        *[("machine", m) for m in query.machines],
        *[("branch", b) for b in query.branches],
        ("x", x),
        *([("commits", str(commits).lower())] if commits is not None else []),
    ]
    return render(
        request,
        "timeline.html",
        title=f"{benchmark} {metric} · timeline",
        q=query,
        shown_params=json.loads(canonical),
        twin=f"{API_PREFIX}/views/timeline?{urlencode(twin_query)}",
        changes=f"{API_PREFIX}/views/timeline/changepoints?{urlencode(twin_query)}",
        other_x=f"/timeline?{urlencode([(k, v) for k, v in twin_query if k != 'x'])}"
        f"&x={'time' if x == 'commit' else 'commit'}",
        chunk=chunk,
    )


TIMELINE = site.add(
    Page(
        path="/timeline",
        rule=permissions.ANYONE,
        name="timeline",
        source=params.reader,
        params=params.timeline_data,
        view=timeline.data,
    )
)
CHANGEPOINTS = site.add(
    Page(
        path="/timeline/changepoints",
        rule=permissions.ANYONE,
        name="timeline_changepoints",
        source=params.reader,
        params=params.timeline_lines,
        view=timeline.changepoint_lines,
    )
)
RESULT = site.add(
    Page(
        path="/results/{result_id}",
        rule=permissions.ANYONE,
        name="result",
        source=params.reader,
        params=params.result_id,
        view=timeline.result,
    )
)
SERIES_KEYS = site.add(
    Page(
        path="/series-keys",
        rule=permissions.ANYONE,
        name="series_keys",
        source=params.database,
        params=params.project,
        view=timeline.series_choices,
    )
)

# -- compare ----------------------------------------------------------------------------------


def _compare_form(request: Request, read: Reader, q: compare.CompareQuery) -> Response | None:
    """Nothing to compare, or one run only (the run page's "compare with another run"):
    the form to choose."""
    if q.anything():
        return None
    listed, _ = run_store.list_runs(
        read.conn,
        run_store.RunFilter(),
        admin=read.admin,
        viewer=read.viewer,
        cursor=None,
        limit=50,
    )
    return render(
        request,
        "compare_pick.html",
        title="Compare",
        runs=listed,
        a=q.sides.get("a"),
        b=q.sides.get("b"),
    )


def _page_link(request: Request, **changes: Any) -> str:
    """This page's address with some parameters changed (empty values dropped)."""
    items = {k: v for k, v in request.query_params.items() if k not in changes}
    items.update({k: v for k, v in changes.items() if v not in ("", None)})
    return "?" + urlencode(items)


def _compare_context(
    request: Request, q: compare.CompareQuery, view: dict[str, Any]
) -> dict[str, Any]:
    shown = q.shown
    keep = {k: v for k, v in request.query_params.items() if k not in ("page",) and v}

    def sort_link(key: str) -> str:
        same = shown.sort == key and shown.dir == "asc"
        return _page_link(request, sort=key, dir="desc" if same else "asc", page=None)

    return {
        "view": view,
        "twin": f"{API_PREFIX}/views/compare?{urlencode(keep)}",
        "sort_link": sort_link,
        "page_link": lambda number: _page_link(request, page=number if number > 1 else None),
        "hidden": [(k, v) for k, v in request.query_params.items() if k in compare.SIDES and v]
        + [(k, v) for k, v in (("sort", shown.sort), ("dir", shown.dir)) if shown.sort and v]
        + ([("per_page", str(shown.per_page))] if shown.per_page != compare.COMPARE_PAGE else []),
    }


COMPARE = site.add(
    Page(
        path="/compare",
        rule=permissions.ANYONE,
        name="compare",
        source=params.reader,
        params=params.compare,
        view=compare.comparison,
        template="compare.html",
        title="Compare",
        context=_compare_context,
        missing=lambda _, exc: f"{exc} (or its machine is not approved).",
        form=_compare_form,
    )
)

# -- machines ---------------------------------------------------------------------------------

MACHINES = site.add(
    Page(
        path="/machines",
        rule=permissions.ANYONE,
        name="machines",
        source=params.reader,
        params=params.nothing,
        view=machines.machines,
        template="machines.html",
        title="Machines",
    )
)
MACHINE = site.add(
    Page(
        path="/machines/{name}",
        rule=permissions.ANYONE,
        name="machine",
        source=params.reader,
        params=params.machine_name,
        view=machines.machine,
        template="machine.html",
        title=lambda name, _: f"Machine {name}",
        missing=lambda name, _: f"There is no machine {name!r} (or it is not approved yet).",
    )
)

# -- people -----------------------------------------------------------------------------------

PEOPLE = site.add(
    Page(
        path="/people",
        rule=permissions.ANYONE,
        name="people",
        source=params.reader,
        params=params.cursor,
        view=people.people,
        template="people.html",
        title="People",
        context=lambda _request, _cursor, view: {"owners": view["owners"], "view": view},
    )
)
PERSON = site.add(
    Page(
        path="/people/{owner:text}",
        rule=permissions.ANYONE,
        name="person",
        source=params.reader,
        params=params.person,
        view=people.person,
        template="person.html",
        title=lambda q, _: f"{q.owner}'s results",
        context=lambda _request, _q, view: {"view": view},
    )
)

# -- data over years (admins) -----------------------------------------------------------------

DATA = site.add(
    Page(
        path="/admin/data",
        rule=permissions.ADMIN,
        name="data",
        source=params.data_source,
        params=params.nothing,
        view=data.data,
        template="data.html",
        title="Data",
        context=lambda _request, _nothing, view: {"view": view},
    )
)

# -- load tests -------------------------------------------------------------------------------

LOADTESTS = site.add(
    Page(
        path="/loadtests",
        rule=permissions.ANYONE,
        name="loadtests",
        source=params.loadtest_store,
        params=params.nothing,
        view=loadtests.loadtests,
        template="loadtests.html",
        title="Load tests",
        missing=lambda _, __: "This server does not run load tests.",
    )
)
LOADTEST = site.add(
    Page(
        path="/loadtests/{test_id}",
        rule=permissions.ANYONE,
        name="loadtest",
        source=params.loadtest_store,
        params=params.test_id,
        view=loadtests.loadtest,
        template="loadtest.html",
        title=lambda test_id, _: f"Load test {test_id}",
    )
)

# -- admin forms ------------------------------------------------------------------------------
#
# Under /auth/: the session cookie counts for a POST only on the paths whose forms check a
# CSRF token themselves (server/http/middleware.py), and these do.


@site.pages.post("/auth/machines/{name}/approve", openapi_extra=rule(permissions.ADMIN))
async def machine_approve_form(
    name: str, request: Request, who: Principal = Depends(principal)
) -> Response:
    """The Approve button of the machines pages (signed-in admins): the API's approve."""
    try:
        # Who is asking comes first, as on every route: the form is read only for an admin.
        permissions.require_admin(who)
    except (Unauthorized, Forbidden) as refused:
        status = 401 if isinstance(refused, Unauthorized) else 403
        return error_page(request, status, "Refused", f"Only admins approve: {refused.message}")
    form = await oauth.read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return error_page(
            request,
            403,
            "Refused",
            "The form expired or did not come from this site: reload the page and try again.",
        )

    def approve() -> bool:
        with request.app.state.engine.connect() as conn:
            try:
                machine_store.approve(conn, name)
            except NotFound:
                return False
        return True

    if not await run_in_threadpool(approve):
        return not_found(request, f"There is no machine {name!r}.")
    back = form.get("next") or ""
    target = back if back in ("/machines", f"/machines/{name}") else f"/machines/{name}"
    return RedirectResponse(target, status_code=303)


_static_files = StaticFiles(directory=STATIC)


@site.pages.api_route(
    "/static/{path:path}", methods=["GET", "HEAD"], openapi_extra=rule(permissions.ANYONE)
)
async def static(path: str, request: Request) -> Response:
    """The stylesheet, the scripts and the chart library (``static/vendor``).

    A route rather than a mounted app: FastAPI drops the mounts of an included router in
    most of the versions perffarm allows, and a route is part of ``router()`` in all."""
    # As StaticFiles does for a mount: "." and ".." resolved (lookup_path then refuses
    # anything outside the folder).
    wanted = os.path.normpath(os.path.join("", *path.split("/")))
    return await _static_files.get_response(wanted, request.scope)


@site.pages.get("/favicon.ico", openapi_extra=rule(permissions.ANYONE))
def favicon() -> Response:
    """No icon: browsers ask for one on pages that name none (the sign-in pages)."""
    return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})


def router() -> APIRouter:
    """The dashboard: the JSON twins under the API's prefix, the pages, the static files."""
    compile_all()
    dashboard = APIRouter()
    dashboard.include_router(site.twins, prefix=API_PREFIX)
    dashboard.include_router(site.pages)
    return dashboard
