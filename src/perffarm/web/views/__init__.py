"""What each dashboard page shows, as plain data: one module per subject, no SQL (the
reads live in ``perffarm.server.store``) and no HTTP (``perffarm.web.routes`` declares the
pages, ``perffarm.web.site`` renders them as HTML and as JSON).

A view is a function of what it reads from (a ``Reader``, or the load-test store) and the
page's parameters, returning the data that both the page and its JSON twin show.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from perffarm.server.core.principal import Principal


@dataclass(frozen=True)
class Reader:
    """Who reads (the visibility rule is theirs), through which connection."""

    conn: sa.Connection
    who: Principal

    @property
    def admin(self) -> bool:
        return self.who.admin

    @property
    def viewer(self) -> int | None:
        return self.who.viewer
