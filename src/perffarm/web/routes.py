"""The dashboard's pages and their JSON twins (``/api/v1/views/...``).

Each page and its twin call the same function of ``perffarm.web.data``; the page renders the
data with a Jinja2 template, the twin returns it as JSON. ``install(app)`` adds both routers
and the static files to the server's app.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from perffarm import __version__
from perffarm.model.api import API_PREFIX
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.core.principal import Principal
from perffarm.server.http import oauth
from perffarm.server.http.csrf import CSRF_FIELD, csrf_ok, csrf_token, set_csrf_cookie
from perffarm.server.http.deps import connection, principal
from perffarm.server.store import machines as machines_module
from perffarm.server.store import results
from perffarm.server.store import runs as run_store
from perffarm.web import assets, data

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
pages = APIRouter(include_in_schema=False)
twins = APIRouter(prefix="/views", tags=["dashboard"])


def _number(value: Any, digits: int = 4) -> str:
    """A measurement as people read it: a few significant digits, no float noise."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or not math.isfinite(value):
        return str(value)
    magnitude = math.floor(math.log10(abs(value)))
    if -4 <= magnitude < 7:
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:,.{decimals}f}"
    return f"{value:.{digits - 1}e}"


def _when(value: Any) -> str:
    if not value:
        return "–"
    text = value if isinstance(value, str) else value.isoformat()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _params(value: Any) -> str:
    if not value:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


def _epoch_ms(value: Any) -> str:
    """Load tests keep times as epoch milliseconds."""
    if not isinstance(value, int | float):
        return "–"
    return _when(datetime.fromtimestamp(value / 1000, UTC).isoformat())


templates.env.filters["number"] = _number
templates.env.filters["epoch_ms"] = _epoch_ms
templates.env.filters["when"] = _when
templates.env.filters["params"] = _params
templates.env.filters["size"] = _size
templates.env.filters["tojson_compact"] = lambda v: json.dumps(v, separators=(",", ":"))
templates.env.globals["version"] = __version__
templates.env.globals["api"] = API_PREFIX
templates.env.globals["urlencode"] = urlencode


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("vendor_missing", assets.missing())
    # Who is signed in (web session): named in the header with a sign-out form; an admin
    # also gets the forms that change things (approve a machine). Forms carry a CSRF token.
    who = getattr(request.state, "principal", None)
    user = who.user if who is not None and who.via_session else None
    context["signed_in"] = user
    context["can_admin"] = user is not None and who.admin
    token, new = csrf_token(request) if user is not None else ("", False)
    context["csrf"] = token
    response = templates.TemplateResponse(request, name, context, status_code=status)
    if user is not None:
        response.headers["Cache-Control"] = "no-store"
        if new:
            set_csrf_cookie(response, token, request)
    return response


def _not_found(request: Request, message: str) -> HTMLResponse:
    return _render(request, "error.html", status=404, title="Not found", message=message)


def _json(value: Any) -> Response:
    # pydantic-core's encoder is several times faster than json.dumps on 100,000-number
    # columns, which is what keeps a big timeline under its time budget.
    return Response(data.to_json(value), media_type="application/json")


# -- home -------------------------------------------------------------------------------------


@pages.get("/", response_class=HTMLResponse)
def home_page(
    request: Request, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> HTMLResponse:
    return _render(
        request,
        "home.html",
        title="perffarm",
        **data.home(conn, admin=who.admin, viewer=who.viewer),
    )


@twins.get("/home")
def home_twin(
    who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Response:
    """The home page's data: projects, latest runs, machines, open alerts."""
    return _json(data.home(conn, admin=who.admin, viewer=who.viewer))


# -- one run ----------------------------------------------------------------------------------


def _environment_groups(document: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
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


@pages.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    run_id: str,
    request: Request,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> HTMLResponse:
    try:
        view = data.run_page(conn, run_id, admin=who.admin, viewer=who.viewer)
    except NotFound:
        return _not_found(request, f"There is no run {run_id} (or its machine is not approved).")
    document = view["document"]
    chart_series = [
        {"name": s["name"], "unit": s["unit"], "t": s["t"], "values": s["values"]}
        for s in document.get("series") or []
    ]
    return _render(
        request,
        "run.html",
        title=f"Run {run_id[:8]} · {document['project']}",
        run_id=run_id,
        doc=document,
        view=view,
        environment=_environment_groups(document),
        chart_series=chart_series,
    )


@pages.get("/runs/{run_id}/run.json")
def run_download(
    run_id: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Response:
    """The run document exactly as stored, as a file to save."""
    try:
        text = run_store.run_document(conn, run_id, admin=who.admin, viewer=who.viewer)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(
        text,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}.json"'},
    )


@twins.get("/runs/{run_id}")
def run_twin(
    run_id: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Response:
    """The run page's data: the document (attachments without their bytes) and its machine."""
    try:
        return _json(data.run_page(conn, run_id, admin=who.admin, viewer=who.viewer))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


# Result ids are 64-bit integers in both databases: a larger one is a 422, not a crash.
_MAX_ID = 2**63 - 1


@pages.get("/results/{result_id}")
def result_redirect(
    result_id: int = PathParam(ge=1, le=_MAX_ID),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """A timeline point links here: the run the result belongs to."""
    try:
        run_id = data.result_run(conn, result_id, admin=who.admin, viewer=who.viewer)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


# -- timeline ---------------------------------------------------------------------------------


def _timeline_query(
    project: str,
    benchmark: str,
    metric: str,
    params: str | None,
    machine: list[str] | None,
    branch: list[str] | None,
    x: str,
    commits: bool | None = None,
    limit: int | None = None,
    before: str | None = None,
) -> data.TimelineQuery:
    # A comma-separated value and repeated parameters both name several machines/branches.
    def several(values: list[str] | None) -> tuple[str, ...]:
        out: list[str] = []
        for value in values or []:
            out += [part.strip() for part in value.split(",") if part.strip()]
        return tuple(dict.fromkeys(out))

    if x not in ("commit", "time"):
        raise HTTPException(422, "x: give commit (commit order) or time")
    return data.TimelineQuery(
        project=project,
        benchmark=benchmark,
        metric=metric,
        params=params,
        machines=several(machine),
        branches=several(branch),
        x=x,
        commits=commits,
        limit=limit,
        before=before or None,
    )


# The page loads a long line in pieces of this many points, newest first: each answer stays
# small and fast, and the chart is drawn (and usable) with the first.
TIMELINE_CHUNK = 20_000


@pages.get("/timeline", response_class=HTMLResponse)
def timeline_page(
    request: Request,
    project: str | None = None,
    benchmark: str | None = None,
    metric: str | None = None,
    params: str | None = None,
    machine: list[str] | None = Query(None),
    branch: list[str] | None = Query(None),
    x: str = "commit",
    commits: bool | None = None,
    chunk: int = Query(TIMELINE_CHUNK, ge=1, le=data.MAX_TIMELINE_POINTS),
    conn: sa.Connection = Depends(connection),
) -> HTMLResponse:
    # The page is a frame: the chart's data comes from the twin, fetched by the browser, so
    # the HTML answers at once whatever the size of the series.
    if not (project and benchmark and metric):
        choices = data.series_choices(conn, project)
        return _render(
            request, "timeline_pick.html", title="Timeline", project=project, choices=choices
        )
    query = _timeline_query(project, benchmark, metric, params, machine, branch, x, commits)
    try:
        shown_params = json.loads(results.parse_params(params))
    except Invalid as exc:
        return _render(request, "error.html", status=422, title="Bad query", message=str(exc))
    twin_query = [
        ("project", project),
        ("benchmark", benchmark),
        ("metric", metric),
        ("params", results.parse_params(params)),
        *[("machine", m) for m in query.machines],
        *[("branch", b) for b in query.branches],
        ("x", x),
        *([("commits", str(commits).lower())] if commits is not None else []),
    ]
    return _render(
        request,
        "timeline.html",
        title=f"{benchmark} {metric} · timeline",
        q=query,
        shown_params=shown_params,
        twin=f"{API_PREFIX}/views/timeline?{urlencode(twin_query)}",
        changes=f"{API_PREFIX}/views/timeline/changepoints?{urlencode(twin_query)}",
        other_x=f"/timeline?{urlencode([(k, v) for k, v in twin_query if k != 'x'])}"
        f"&x={'time' if x == 'commit' else 'commit'}",
        chunk=chunk,
    )


@twins.get("/timeline")
async def timeline_twin(
    project: str,
    benchmark: str,
    metric: str,
    params: str | None = Query(None, description='JSON object, e.g. {"clients":4}; default {}'),
    machine: list[str] | None = Query(None, description="Machines (repeat or comma-separate)."),
    branch: list[str] | None = Query(None, description="Branches; default: every branch."),
    x: str = Query("commit", description="commit (commit order) or time"),
    changepoints: bool = Query(True, description="Include change points (slow for long lines)."),
    commits: bool | None = Query(
        None,
        description="Each point's commit (default: for lines up to 20,000 points; longer "
        "lines leave it out, see /views/results/{id}).",
    ),
    limit: int | None = Query(
        None,
        ge=1,
        le=data.MAX_TIMELINE_POINTS,
        description="At most this many points per line, the newest (default: every point); "
        "next_cursor, given back as before, asks for the points before them.",
    ),
    before: str | None = Query(None, description="next_cursor of the previous answer"),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """The timeline's lines as columns: result id, epoch seconds, value, spread, commit.

    Each line also says how many points it has in all (``total``) and where the points
    given start among them (``offset``).
    """
    query = _timeline_query(
        project, benchmark, metric, params, machine, branch, x, commits, limit, before
    )

    def work() -> bytes:
        try:
            if not changepoints:
                return data.timeline_json(conn, query, admin=who.admin, viewer=who.viewer)
            answer = data.timeline(conn, query, admin=who.admin, viewer=who.viewer)
            answer["changepoints"] = data.timeline_changepoints(
                conn, query, admin=who.admin, viewer=who.viewer, data=answer
            )
        except Invalid as exc:
            raise HTTPException(422, str(exc)) from None
        return data.to_json(answer)

    return Response(await run_in_threadpool(work), media_type="application/json")


@twins.get("/timeline/changepoints")
async def timeline_changepoints_twin(
    project: str,
    benchmark: str,
    metric: str,
    params: str | None = None,
    machine: list[str] | None = Query(None),
    branch: list[str] | None = Query(None),
    x: str = "commit",
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """Change points of each timeline line (``perffarm.analysis.changepoint.detect``)."""
    query = _timeline_query(project, benchmark, metric, params, machine, branch, x)

    def work() -> bytes:
        try:
            found = data.timeline_changepoints(conn, query, admin=who.admin, viewer=who.viewer)
        except Invalid as exc:
            raise HTTPException(422, str(exc)) from None
        return data.to_json({"lines": found})

    return Response(await run_in_threadpool(work), media_type="application/json")


@twins.get("/results/{result_id}")
def result_twin(
    result_id: int = PathParam(ge=1, le=_MAX_ID),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """One result with its run's commit, machine and spread (a timeline point's details)."""
    try:
        return _json(data.result_detail(conn, result_id, admin=who.admin, viewer=who.viewer))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@twins.get("/series-keys")
def series_keys_twin(
    project: str | None = None, conn: sa.Connection = Depends(connection)
) -> Response:
    """The timeline picker's data: series keys (of one project) and branches."""
    return _json(data.series_choices(conn, project))


# -- compare ----------------------------------------------------------------------------------


def _resolve_compare(
    conn: sa.Connection, who: Principal, params: dict[str, str | None]
) -> tuple[str, str]:
    """Run ids from ``a``/``b``, or from commits or branches (newest matching run)."""
    ids = []
    for side in ("a", "b"):
        if params.get(side):
            ids.append(params[side] or "")
            continue
        commit, branch = params.get(f"{side}_commit"), params.get(f"{side}_branch")
        if not (commit or branch):
            raise Invalid(f"give {side}=RUN_ID, {side}_commit=SHA or {side}_branch=NAME")
        ids.append(
            data.latest_run_of(
                conn,
                admin=who.admin,
                viewer=who.viewer,
                project=params.get("project"),
                commit=commit,
                branch=branch,
                machine=params.get("machine"),
            )
        )
    return ids[0], ids[1]


_COMPARE_KEYS = ("a", "b", "a_commit", "b_commit", "a_branch", "b_branch", "project", "machine")


def _compare_view(
    q: str = Query("", description="Words the result's name must all contain."),
    verdict: str = Query("", description="faster, slower, no significant change or unknown"),
    sort: str = Query("", description="name, baseline, contender, ratio, verdict or p"),
    dir: str = Query("asc", description="asc or desc"),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(data.COMPARE_PAGE, ge=1, le=10_000),
) -> data.CompareView:
    return data.CompareView(q=q, verdict=verdict, sort=sort, dir=dir, page=page, per_page=per_page)


def _page_link(request: Request, **changes: Any) -> str:
    """This page's address with some parameters changed (empty values dropped)."""
    items = {k: v for k, v in request.query_params.items() if k not in changes}
    items.update({k: v for k, v in changes.items() if v not in ("", None)})
    return "?" + urlencode(items)


@pages.get("/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    shown: data.CompareView = Depends(_compare_view),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> HTMLResponse:
    params = {k: request.query_params.get(k) for k in _COMPARE_KEYS}
    # Nothing, or one run only (the run page's "compare with another run"): the form.
    if not any(v for k, v in params.items() if k not in ("a", "b")) and not (
        params["a"] and params["b"]
    ):
        runs, _ = run_store.list_runs(
            conn, run_store.RunFilter(), admin=who.admin, viewer=who.viewer, cursor=None, limit=50
        )
        return _render(
            request, "compare_pick.html", title="Compare", runs=runs, a=params["a"], b=params["b"]
        )

    def work() -> dict[str, Any]:
        a, b = _resolve_compare(conn, who, params)
        view = data.compare(conn, a, b, admin=who.admin, viewer=who.viewer)
        return data.compare_page(view, shown)

    try:
        view = await run_in_threadpool(work)
    except Invalid as exc:
        return _render(request, "error.html", status=422, title="Bad query", message=str(exc))
    except NotFound as exc:
        return _not_found(request, f"{exc} (or its machine is not approved).")
    keep = {k: v for k, v in request.query_params.items() if k not in ("page",) and v}
    twin = f"{API_PREFIX}/views/compare?{urlencode(keep)}"

    def sort_link(key: str) -> str:
        same = shown.sort == key and shown.dir == "asc"
        return _page_link(request, sort=key, dir="desc" if same else "asc", page=None)

    return _render(
        request,
        "compare.html",
        title="Compare",
        view=view,
        twin=twin,
        sort_link=sort_link,
        page_link=lambda number: _page_link(request, page=number if number > 1 else None),
        hidden=[(k, v) for k, v in request.query_params.items() if k in _COMPARE_KEYS and v]
        + [(k, v) for k, v in (("sort", shown.sort), ("dir", shown.dir)) if shown.sort and v]
        + ([("per_page", str(shown.per_page))] if shown.per_page != data.COMPARE_PAGE else []),
    )


@twins.get("/compare")
async def compare_twin(
    request: Request,
    a: str | None = Query(None, description="Baseline run id."),
    b: str | None = Query(None, description="Contender run id."),
    a_commit: str | None = None,
    b_commit: str | None = None,
    a_branch: str | None = None,
    b_branch: str | None = None,
    project: str | None = None,
    machine: str | None = None,
    shown: data.CompareView = Depends(_compare_view),
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """The common results of two runs (or of the newest runs of two commits or branches).

    The same filter, sort and page as the page (``q``, ``verdict``, ``sort``, ``dir``,
    ``page``, ``per_page`` up to 10,000): ``matched`` rows pass the filter, ``pages`` pages.
    """
    params = {k: request.query_params.get(k) for k in _COMPARE_KEYS}

    def work() -> bytes:
        a_id, b_id = _resolve_compare(conn, who, params)
        view = data.compare(conn, a_id, b_id, admin=who.admin, viewer=who.viewer)
        return data.to_json(data.compare_page(view, shown))

    try:
        body = await run_in_threadpool(work)
    except Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(body, media_type="application/json")


# -- machines ---------------------------------------------------------------------------------


@pages.get("/machines", response_class=HTMLResponse)
def machines_page(
    request: Request, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> HTMLResponse:
    return _render(
        request,
        "machines.html",
        title="Machines",
        **data.machines_list(conn, admin=who.admin, viewer=who.viewer),
    )


@twins.get("/machines")
def machines_twin(
    who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Response:
    """Machines with a hardware summary, owner, approval and last seen."""
    return _json(data.machines_list(conn, admin=who.admin, viewer=who.viewer))


@pages.get("/machines/{name}", response_class=HTMLResponse)
def machine_page(
    name: str,
    request: Request,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> HTMLResponse:
    try:
        view = data.machine_page(conn, name, admin=who.admin, viewer=who.viewer)
    except NotFound:
        return _not_found(request, f"There is no machine {name!r} (or it is not approved yet).")
    return _render(request, "machine.html", title=f"Machine {name}", **view)


@twins.get("/machines/{name}")
def machine_twin(
    name: str, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Response:
    """One machine, its fingerprint changes and its latest runs."""
    try:
        return _json(data.machine_page(conn, name, admin=who.admin, viewer=who.viewer))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


# -- people -----------------------------------------------------------------------------------


@pages.get("/people", response_class=HTMLResponse)
def people_page(
    request: Request,
    cursor: str | None = None,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> HTMLResponse:
    try:
        everybody = data.person(conn, None, admin=who.admin, viewer=who.viewer, cursor=cursor)
    except Invalid as exc:
        return _render(request, "error.html", status=422, title="Bad query", message=str(exc))
    return _render(
        request,
        "people.html",
        title="People",
        owners=data.owners(conn, admin=who.admin, viewer=who.viewer),
        view=everybody,
    )


@twins.get("/people")
def people_twin(
    cursor: str | None = None,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """Everybody: owners with their machines and runs, and all results (one page)."""
    try:
        everybody = data.person(conn, None, admin=who.admin, viewer=who.viewer, cursor=cursor)
    except Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    return _json({"owners": data.owners(conn, admin=who.admin, viewer=who.viewer), **everybody})


@pages.get("/people/{owner}", response_class=HTMLResponse)
def person_page(
    owner: str,
    request: Request,
    cursor: str | None = None,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> HTMLResponse:
    try:
        view = data.person(conn, owner, admin=who.admin, viewer=who.viewer, cursor=cursor)
    except Invalid as exc:
        return _render(request, "error.html", status=422, title="Bad query", message=str(exc))
    return _render(request, "person.html", title=f"{owner}'s results", view=view)


@twins.get("/people/{owner}")
def person_twin(
    owner: str,
    cursor: str | None = None,
    who: Principal = Depends(principal),
    conn: sa.Connection = Depends(connection),
) -> Response:
    """One owner's machines and results (one page; pass next_cursor back as cursor)."""
    try:
        return _json(data.person(conn, owner, admin=who.admin, viewer=who.viewer, cursor=cursor))
    except Invalid as exc:
        raise HTTPException(422, str(exc)) from None


# -- load tests -------------------------------------------------------------------------------


def _loadtests(request: Request) -> Any:
    # The store is set up by the load-test part of the server (issue 9), when present.
    return getattr(request.app.state, "loadtests", None)


@pages.get("/loadtests", response_class=HTMLResponse)
def loadtests_page(request: Request) -> HTMLResponse:
    store = _loadtests(request)
    if store is None:
        return _not_found(request, "This server does not run load tests.")
    return _render(request, "loadtests.html", title="Load tests", **data.loadtests_list(store))


@twins.get("/loadtests")
def loadtests_twin(request: Request) -> Response:
    """Load tests, newest first: status, datapoints, verdict."""
    store = _loadtests(request)
    if store is None:
        raise HTTPException(404, "this server does not run load tests")
    return _json(data.loadtests_list(store))


@pages.get("/loadtests/{test_id}", response_class=HTMLResponse)
def loadtest_page(test_id: str, request: Request) -> HTMLResponse:
    store = _loadtests(request)
    try:
        if store is None:
            raise NotFound("this server does not run load tests")
        view = data.loadtest_page(store, test_id)
    except NotFound as exc:
        return _not_found(request, str(exc))
    return _render(request, "loadtest.html", title=f"Load test {test_id}", **view)


@twins.get("/loadtests/{test_id}")
def loadtest_twin(test_id: str, request: Request) -> Response:
    """One load test; a finished one with its summary (thresholds, verdict)."""
    store = _loadtests(request)
    try:
        if store is None:
            raise NotFound("this server does not run load tests")
        return _json(data.loadtest_page(store, test_id))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


# -- admin forms ------------------------------------------------------------------------------
#
# Under /auth/: the session cookie counts for a POST only on the paths whose forms check a
# CSRF token themselves (server/security.py), and these do.


@pages.post("/auth/machines/{name}/approve")
async def machine_approve_form(
    name: str, request: Request, who: Principal = Depends(principal)
) -> Response:
    """The Approve button of the machines pages (signed-in admins): the API's approve."""
    form = await oauth.read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return _render(
            request,
            "error.html",
            status=403,
            title="Refused",
            message="The form expired or did not come from this site: reload the page and "
            "try again.",
        )
    if not who.admin:
        return _render(
            request, "error.html", status=403, title="Refused", message="Only admins approve."
        )

    def approve() -> bool:
        with request.app.state.engine.connect() as conn:
            try:
                machines_module.approve(conn, name)
            except NotFound:
                return False
        return True

    if not await run_in_threadpool(approve):
        return _not_found(request, f"There is no machine {name!r}.")
    back = form.get("next") or ""
    target = back if back in ("/machines", f"/machines/{name}") else f"/machines/{name}"
    return RedirectResponse(target, status_code=303)


@pages.get("/favicon.ico")
def favicon() -> Response:
    """No icon: browsers ask for one on pages that name none (the sign-in pages)."""
    return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})


def install(app: FastAPI) -> None:
    """Add the pages, their JSON twins and the static files to the server's app."""
    app.include_router(twins, prefix=API_PREFIX)
    app.include_router(pages)
    # Compiled now rather than by the first visitor of each page (a few hundred ms).
    for template in (HERE / "templates").glob("*.html"):
        templates.get_template(template.name)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
