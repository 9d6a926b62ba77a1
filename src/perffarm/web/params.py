"""What the dashboard's routes take from a request, as FastAPI dependencies: the source a
view reads from (``reader``, ``database``, ``loadtest_store``) and each page's parameters,
parsed once for the page and its JSON twin alike.

They are ``async`` because they do no I/O: FastAPI runs them on the event loop, where a
plain function would cost a trip to a worker thread each (the view itself runs in one).
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from starlette.convertors import Convertor, register_url_convertor

from perffarm.server.core.errors import Invalid
from perffarm.server.core.principal import Principal
from perffarm.server.http.deps import connection, principal
from perffarm.web.views import Reader
from perffarm.web.views.compare import COMPARE_PAGE, CompareQuery, CompareView
from perffarm.web.views.data import DataSource
from perffarm.web.views.loadtests import LoadTests
from perffarm.web.views.people import PersonQuery
from perffarm.web.views.timeline import MAX_TIMELINE_POINTS, TimelineData, TimelineQuery

# Result ids are 64-bit integers in both databases: a larger one is a 422, not a crash.
MAX_ID = 2**63 - 1


class AnyText(Convertor[str]):
    """A path parameter that is any text, slashes and line breaks included (``{owner:text}``):
    an owner's name is any text, and its page must answer to the link that names it.
    Starlette's ``str`` stops at a slash and its ``path`` at a line break."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyText())

# -- sources ----------------------------------------------------------------------------------


async def reader(
    who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> Reader:
    """The database, read as the caller (the visibility rule is theirs)."""
    return Reader(conn=conn, who=who)


async def database(conn: sa.Connection = Depends(connection)) -> sa.Connection:
    """The database, for reads that follow no visibility rule."""
    return conn


async def loadtest_store(request: Request) -> LoadTests | None:
    """The load-test store, set up by the load-test part of the server when present."""
    store: LoadTests | None = getattr(request.app.state, "loadtests", None)
    return store


# -- parameters -------------------------------------------------------------------------------


async def nothing() -> None:
    """A page with no parameter."""
    return None


async def run_id(run_id: str) -> str:
    return run_id


async def machine_name(name: str) -> str:
    return name


async def test_id(test_id: str) -> str:
    return test_id


async def result_id(result_id: int = PathParam(ge=1, le=MAX_ID)) -> int:
    return result_id


async def project(project: str | None = None) -> str | None:
    return project


async def cursor(cursor: str | None = None) -> str | None:
    return cursor


async def person(owner: str, cursor: str | None = None) -> PersonQuery:
    return PersonQuery(owner=owner, cursor=cursor)


def several(values: list[str] | None) -> tuple[str, ...]:
    """Machines or branches: a comma-separated value and repeated parameters alike."""
    out: list[str] = []
    for value in values or []:
        out += [part.strip() for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(out))


def check_x(x: str) -> str:
    if x not in ("commit", "time"):
        raise Invalid("x: give commit (commit order) or time")
    return x


async def timeline_lines(
    project: str,
    benchmark: str,
    metric: str,
    params: str | None = None,
    machine: list[str] | None = Query(None),
    branch: list[str] | None = Query(None),
    x: str = "commit",
) -> TimelineQuery:
    """Which lines (the change points' parameters)."""
    return TimelineQuery(
        project=project,
        benchmark=benchmark,
        metric=metric,
        params=params,
        machines=several(machine),
        branches=several(branch),
        x=check_x(x),
    )


async def timeline_data(
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
        le=MAX_TIMELINE_POINTS,
        description="At most this many points per line, the newest (default: every point); "
        "next_cursor, given back as before, asks for the points before them.",
    ),
    before: str | None = Query(None, description="next_cursor of the previous answer"),
) -> TimelineData:
    """Which lines, which of their points, and whether with change points."""
    query = TimelineQuery(
        project=project,
        benchmark=benchmark,
        metric=metric,
        params=params,
        machines=several(machine),
        branches=several(branch),
        x=check_x(x),
        commits=commits,
        limit=limit,
        before=before or None,
    )
    return TimelineData(query=query, changepoints=changepoints)


async def compare_view(
    q: str = Query("", description="Words the result's name must all contain."),
    verdict: str = Query("", description="faster, slower, no significant change or unknown"),
    sort: str = Query("", description="name, baseline, contender, ratio, verdict or p"),
    dir: str = Query("asc", description="asc or desc"),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(COMPARE_PAGE, ge=1, le=10_000),
) -> CompareView:
    return CompareView(q=q, verdict=verdict, sort=sort, dir=dir, page=page, per_page=per_page)


async def compare(
    a: str | None = Query(None, description="Baseline run id."),
    b: str | None = Query(None, description="Contender run id."),
    a_commit: str | None = None,
    b_commit: str | None = None,
    a_branch: str | None = None,
    b_branch: str | None = None,
    project: str | None = None,
    machine: str | None = None,
    shown: CompareView = Depends(compare_view),
) -> CompareQuery:
    """Two runs, or commits or branches to find them by, and which rows to show."""
    sides = {
        "a": a,
        "b": b,
        "a_commit": a_commit,
        "b_commit": b_commit,
        "a_branch": a_branch,
        "b_branch": b_branch,
        "project": project,
        "machine": machine,
    }
    return CompareQuery(sides=sides, shown=shown)


async def data_source(
    request: Request, who: Principal = Depends(principal), conn: sa.Connection = Depends(connection)
) -> DataSource:
    """The database as the caller reads it, with the server's retention policy."""
    return DataSource(Reader(conn=conn, who=who), request.app.state.settings.retention)
