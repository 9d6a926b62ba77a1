"""Compare: every result of one run against another's (or the newest runs of two commits or
branches), filtered, sorted and paged by the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from perffarm.analysis.compare import compare_runs
from perffarm.gcpause import collector_paused
from perffarm.model import Direction
from perffarm.server.core.errors import Invalid, NotFound
from perffarm.server.store import compare as store
from perffarm.server.store import runs as run_store
from perffarm.web.cache import SharedLru
from perffarm.web.encode import loads
from perffarm.web.views import Reader

COMPARE_PAGE = 100
COMPARE_SORTS = ("name", "baseline", "contender", "ratio", "verdict", "p")
#: The parameters that say which runs to compare.
SIDES = ("a", "b", "a_commit", "b_commit", "a_branch", "b_branch", "project", "machine")


@dataclass(frozen=True)
class CompareView:
    """Which rows of a comparison to show: filter, sort and page (the URL's parameters)."""

    q: str = ""
    verdict: str = ""
    sort: str = ""
    dir: str = "asc"
    page: int = 1
    per_page: int = COMPARE_PAGE


@dataclass(frozen=True)
class CompareQuery:
    """Which runs (``sides``: the parameters of ``SIDES`` given) and which rows to show."""

    sides: dict[str, str | None] = field(default_factory=dict)
    shown: CompareView = CompareView()

    def anything(self) -> bool:
        """Two runs, or commits or branches to find them by: something to compare."""
        named = any(v for k, v in self.sides.items() if k not in ("a", "b"))
        return named or bool(self.sides.get("a") and self.sides.get("b"))


def _side(read: Reader, run_id: str, *, results: bool) -> tuple[dict[str, Any], list[Any]]:
    """A run's header and, with ``results``, its results as ``compare_runs`` reads them."""
    head = store.run_head(read.conn, run_id, admin=read.admin, viewer=read.viewer)
    if not results:
        return head, []
    fetched = store.result_rows(read.conn, run_id)
    # Plain attribute holders with what compare_runs reads, built straight from the rows'
    # tuples: the values were validated at ingest, and pydantic's model_construct costs
    # about half a millisecond per result here (two per result: 5 s for 5,000 results).
    directions = {d.value: d for d in Direction}
    # One parse for every result's samples (a JSON array of arrays) instead of one per
    # result, and one per distinct params text: per-call overhead was most of the cost.
    all_samples = loads("[" + ",".join(row[5] for row in fetched) + "]") if fetched else []
    params_of: dict[str, Any] = {}
    items = []
    for (
        benchmark,
        params,
        metric,
        unit,
        direction,
        _,
        n,
        mean,
        median,
        stdev,
        low,
        high,
    ), samples in zip(fetched, all_samples, strict=True):
        parsed_params = params_of.get(params)
        if parsed_params is None:
            parsed_params = params_of[params] = loads(params)
        summary = SimpleNamespace(
            n=n,
            mean=mean,
            median=median,
            stdev=stdev,
            min=low,
            max=high,
            cv=None,
            mean_ci=None,
            median_ci=None,
            q1=None,
            q3=None,
            outliers=0,
            warnings=[],
        )
        items.append(
            SimpleNamespace(
                benchmark=benchmark,
                params=parsed_params,
                metric=metric,
                unit=unit,
                direction=directions[direction],
                samples=samples,
                summary=summary,
                warmup_samples=[],
                original_unit=None,
                measurement=None,
                extra={},
            )
        )
    return head, items


# A stored run never changes (ingest is idempotent on its id), so the comparison of two run
# ids stays true: a shared link opened again answers at once.
_comparisons: SharedLru[list[dict[str, Any]]] = SharedLru(32)


def compare(read: Reader, a: str, b: str) -> dict[str, Any]:
    """Every result of run ``b`` (contender) against run ``a`` (baseline)."""
    rows = _comparisons.get((a, b))
    need = rows is None
    with collector_paused():
        baseline, base_results = _side(read, a, results=need)
        contender, cont_results = _side(read, b, results=need)
        if rows is None:
            rows = []
            for item in compare_runs(
                SimpleNamespace(results=base_results),  # type: ignore[arg-type]  # duck-typed runs, see _side
                SimpleNamespace(results=cont_results),  # type: ignore[arg-type]
            ):
                entry = item.to_dict()
                entry["name"] = item.name
                rows.append(entry)
            _comparisons.put((a, b), rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return {"baseline": baseline, "contender": contender, "rows": rows, "counts": counts}


def _sort_value(row: dict[str, Any], key: str) -> Any:
    if key == "name":
        return row["name"].lower()
    if key == "verdict":
        return row["verdict"]
    c = row.get("comparison") or {}
    return c.get("p_value" if key == "p" else key)


def compare_page(view: dict[str, Any], shown: CompareView) -> dict[str, Any]:
    """One page of a comparison's rows, filtered and sorted over all of them.

    Done by the server, so that a page never carries thousands of rows of HTML and the
    address alone (``q``, ``verdict``, ``sort``, ``dir``, ``page``) reproduces a view.
    """
    if shown.sort and shown.sort not in COMPARE_SORTS:
        raise Invalid(f"sort: one of {', '.join(COMPARE_SORTS)}")
    if shown.dir not in ("asc", "desc"):
        raise Invalid("dir: asc or desc")
    words = shown.q.lower().split()
    rows = [
        row
        for row in view["rows"]
        if (not shown.verdict or row["verdict"] == shown.verdict)
        and all(word in row["name"].lower() for word in words)
    ]
    if shown.sort:
        # Rows without a number go last whichever the direction.
        present = [r for r in rows if _sort_value(r, shown.sort) is not None]
        missing = [r for r in rows if _sort_value(r, shown.sort) is None]
        present.sort(key=lambda r: _sort_value(r, shown.sort), reverse=shown.dir == "desc")
        rows = present + missing
    pages = max(1, -(-len(rows) // shown.per_page))
    page = min(max(1, shown.page), pages)
    start = (page - 1) * shown.per_page
    return {
        **{k: v for k, v in view.items() if k != "rows"},
        "rows": rows[start : start + shown.per_page],
        "total": len(view["rows"]),
        "matched": len(rows),
        "page": page,
        "pages": pages,
        "per_page": shown.per_page,
        "first": start + 1 if rows else 0,
        "shown": {
            "q": shown.q,
            "verdict": shown.verdict,
            "sort": shown.sort,
            "dir": shown.dir,
        },
    }


def latest_run_of(
    read: Reader,
    *,
    project: str | None,
    branch: str | None = None,
    commit: str | None = None,
    machine: str | None = None,
) -> str:
    """The newest run matching; how the compare page turns commits or branches into runs."""
    runs, _ = run_store.list_runs(
        read.conn,
        run_store.RunFilter(project=project, branch=branch, commit=commit, machine=machine),
        admin=read.admin,
        cursor=None,
        limit=1,
        viewer=read.viewer,
    )
    if not runs:
        what = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("project", project),
                ("branch", branch),
                ("commit", commit),
                ("machine", machine),
            )
            if v
        )
        raise NotFound(f"no run with {what}")
    return runs[0].id


def resolve(read: Reader, sides: dict[str, str | None]) -> tuple[str, str]:
    """Run ids from ``a``/``b``, or from commits or branches (newest matching run)."""
    ids = []
    for side in ("a", "b"):
        if sides.get(side):
            ids.append(sides[side] or "")
            continue
        commit, branch = sides.get(f"{side}_commit"), sides.get(f"{side}_branch")
        if not (commit or branch):
            raise Invalid(f"give {side}=RUN_ID, {side}_commit=SHA or {side}_branch=NAME")
        ids.append(
            latest_run_of(
                read,
                project=sides.get("project"),
                commit=commit,
                branch=branch,
                machine=sides.get("machine"),
            )
        )
    return ids[0], ids[1]


def comparison(read: Reader, q: CompareQuery) -> dict[str, Any]:
    """The common results of two runs (or of the newest runs of two commits or branches).

    The same filter, sort and page as the page (``q``, ``verdict``, ``sort``, ``dir``,
    ``page``, ``per_page`` up to 10,000): ``matched`` rows pass the filter, ``pages`` pages.
    """
    a, b = resolve(read, q.sides)
    return compare_page(compare(read, a, b), q.shown)
