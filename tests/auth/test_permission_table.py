"""docs/auth.md's "who may do what" is the table the server's declarations make
(``scripts/permission-table`` rewrites it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perffarm.app import permission_table
from perffarm.server.http import routetable

DOC = Path(__file__).resolve().parents[2] / "docs" / "auth.md"


def test_docs_auth_md_holds_the_table_the_routes_declare() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert routetable.with_table(text, permission_table()) == text, (
        "docs/auth.md's permission table is out of date: run scripts/permission-table"
    )


def test_a_route_without_a_rule_makes_no_table() -> None:
    unruled = routetable.Declared("GET", "/new", None)
    with pytest.raises(ValueError, match="GET /new"):
        routetable.markdown([unruled], {})
