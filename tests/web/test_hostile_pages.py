"""Property-based: every page of the dashboard renders what was stored, whatever it holds.

Hypothesis stores runs with hostile text and extreme numbers (through the upload door, as
an agent would) for machines whose owners have hostile names, and a load test with
hostile datapoints; then every page the dashboard declares (``routes.site.declared``: a
new page without a case here fails; an admin's pages are asked for with the admin token)
and every HTML-only route answers 200 as HTML with no user text read as markup, and every
link of those pages leads somewhere (no 404, no 5xx).
Browser rendering is tests/web/test_every_page.py's; here the server's HTML is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from perffarm.app import create_app
from perffarm.model import Attachment, RunDocument
from perffarm.server.settings import Settings
from perffarm.web import routes
from tests.hostile import fuzz_settings, name_text, visible_markup
from tests.hostile_documents import run_documents
from tests.server.conftest import Api
from tests.server.support import ADMIN, make_run
from tests.web.conftest import DATABASES, scratch_database

AUTH = {"Authorization": f"Bearer {ADMIN}"}
#: Owners whose names a link must carry intact: a slash, a query, a fragment, a percent.
OWNERS = ["a/b <script>", "x?y=1#z", "100% [/p]", "ends with space "]


class Dashboard:
    """The app on one database, the runs stored so far and a load test with hostile data."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.api = Api(client)
        self.machines: dict[str, dict[str, str]] = {}
        self.owners: dict[str, str] = {}
        self.runs: list[RunDocument] = []
        self.test_id = "hostile-pages"
        created = client.post(
            "/api/v1/loadtests",
            json={"id": self.test_id, "started": True, "description": OWNERS[0] * 20},
            headers=AUTH,
        )
        assert created.status_code == 201, created.text
        for peer, metrics in (
            # A peer id is one path segment: no slash.
            ("<img src=x onerror=alert(1)>", '{"received": 1e308, "<b>x</b>": -0.0}'),
            ("[bold] 日本", '{"sent": 5e-324, "note": "</script><perffarm-evil>"}'),
        ):
            answer = client.put(
                f"/test/{self.test_id}/peer/{quote(peer, safe='')}/metrics", content=metrics
            )
            assert answer.status_code == 200, answer.text

    def machine(self, owner: str) -> tuple[str, dict[str, str]]:
        if owner not in self.machines:
            name = f"box-{len(self.machines)}"
            self.machines[owner] = self.api.register(name, owner=owner)
            self.owners[owner] = name
        return self.owners[owner], self.machines[owner]


@pytest.fixture(params=DATABASES)
def dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    folder = tmp_path_factory.mktemp("hostile-pages")
    with scratch_database(request.param, folder) as database:
        settings = Settings(database=database, admin_token=ADMIN)
        with TestClient(create_app(settings)) as client:
            yield Dashboard(client)


def _timeline(run: RunDocument) -> list[str]:
    urls = [f"/timeline?project={quote(run.project, safe='')}"]
    for result in run.results[:2]:
        query = {
            "project": run.project,
            "benchmark": result.benchmark,
            "metric": result.metric,
            "params": json.dumps(result.params),
        }
        urls.append("/timeline?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()))
    return urls


#: Each declared page (by name): the URLs that show the stored data, from the dashboard and
#: the run just stored.
PAGES: dict[str, Callable[[Dashboard, RunDocument, str], list[str]]] = {
    "home": lambda d, run, owner: ["/"],
    "run": lambda d, run, owner: [f"/runs/{run.id}"],
    "compare": lambda d, run, owner: [
        "/compare",
        f"/compare?b={run.id}",
        f"/compare?a={run.id}&b={run.id}",
        f"/compare?a={d.runs[0].id}&b={run.id}&q=%3Cscript%3E&sort=ratio&dir=desc",
    ],
    "machines": lambda d, run, owner: ["/machines"],
    "machine": lambda d, run, owner: [f"/machines/{d.owners[owner]}"],
    "people": lambda d, run, owner: ["/people"],
    "person": lambda d, run, owner: [f"/people/{quote(owner, safe='')}"],
    "loadtests": lambda d, run, owner: ["/loadtests"],
    "loadtest": lambda d, run, owner: [f"/loadtests/{d.test_id}"],
    "data": lambda d, run, owner: ["/admin/data"],
}
#: Pages only an admin sees: rendered, and their links followed, with the admin token.
ADMIN_PAGES = {"data"}
#: Routes that are HTML but not declared pages.
OTHER_HTML = [_timeline]

_HREF = re.compile(r'href="([^"]*)"')


def test_every_declared_page_has_a_case() -> None:
    with_template = {page.name for page in routes.site.declared if page.template is not None}
    assert with_template == set(PAGES), "add the new page to PAGES"


def _links(html: str) -> set[str]:
    found = set()
    for href in _HREF.findall(html):
        url = unescape(href)
        parts = urlsplit(url)
        # Links within the dashboard; the static files and the sign-in are tested elsewhere.
        if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("/static/"):
            continue
        found.add(url)
    return found


def _render(client: TestClient, url: str, headers: dict[str, str] | None = None) -> str:
    answer = client.get(url, headers=headers or {})
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html"), url
    assert visible_markup(answer.text) == [], (url, visible_markup(answer.text))
    return answer.text


def test_every_page_renders_hostile_data_and_its_links_lead_somewhere(dashboard: Dashboard) -> None:
    followed: set[str] = set()

    @fuzz_settings(0.7)
    @given(
        document=run_documents(),
        owner=st.sampled_from(OWNERS) | name_text(max_size=60),
    )
    def show(document: dict[str, Any], owner: str) -> None:
        name, auth = dashboard.machine(owner)
        document = {**document, "machine": name}
        answer = dashboard.client.post(
            "/api/v1/runs",
            content=json.dumps(document),
            headers={**auth, "Content-Type": "application/json"},
        )
        if answer.status_code not in (200, 201):
            assert 400 <= answer.status_code < 500, answer.text
            return
        run = RunDocument.model_validate(document)
        if not dashboard.runs or dashboard.runs[-1].id != run.id:
            dashboard.runs.append(run)
        urls = [
            (url, AUTH if name in ADMIN_PAGES else {})
            for name, case in PAGES.items()
            for url in case(dashboard, run, owner)
        ]
        urls += [(url, {}) for case in OTHER_HTML for url in case(run)]
        links: dict[str, dict[str, str]] = {}
        for url, headers in urls:
            for link in _links(_render(dashboard.client, url, headers)):
                links.setdefault(link, headers)
        for link in sorted(set(links) - followed):
            answer = dashboard.client.get(link, headers=links[link], follow_redirects=False)
            assert answer.status_code < 400, (link, answer.status_code, answer.text[:300])
            followed.add(link)

    show()


def test_links_carry_any_owner_and_attachment_name(dashboard: Dashboard) -> None:
    """Found by the property above: the link to an owner with a slash, a line break, "?" or
    "#" in the name led to a 404 or another page; an attachment named "a/../b" was asked for
    as "b"; a build step's log that is not among the attachments was a dead link; and "."
    or ".." cannot be named by any link, so no attachment has those names."""
    owner = "lab/ops\nteam ?#%"
    name, auth = dashboard.machine(owner)
    attachments = [Attachment.from_bytes(n, n.encode()) for n in ("a/../b", "x?y#z", "50%")]
    run = make_run(machine=name, attachments=attachments)
    document = run.model_dump(mode="json", by_alias=True)
    document["build"] = {"steps": [{"name": "make", "log_attachment": "not-attached.log"}]}
    stored = dashboard.client.post("/api/v1/runs", json=document, headers=auth)
    assert stored.status_code == 201, stored.text
    html = _render(dashboard.client, f"/runs/{run.id}")
    for attachment in attachments:
        link = f"/api/v1/runs/{run.id}/attachments/{quote(attachment.name, safe='')}"
        assert f'href="{link}"' in html
        assert dashboard.client.get(link).content == attachment.data()
    assert "not-attached.log" in html and "attachments/not-attached.log" not in html
    person = f"/people/{quote(owner, safe='')}"
    assert f'href="{person}"' in html
    assert name in _render(dashboard.client, person)
    for bad in (".", ".."):
        document["attachments"] = [
            {**Attachment.from_bytes("x", b"").model_dump(mode="json"), "name": bad}
        ]
        refused = dashboard.client.post("/api/v1/runs", json=document, headers=auth)
        assert refused.status_code == 422 and "attachments.0.name" in refused.text
