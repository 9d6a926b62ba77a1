"""Every skip goes through tests/support.py ``require``/``unavailable``, which CI
(PERFFARM_REQUIRE_POSTGRES=1, PERFFARM_REQUIRE_TOOLS=1) turns into a failure. Any other
way of skipping (``importorskip``, a ``skipif``/``skip`` marker, ``pytest.skip``, an
``xfail``) would let a broken install or a missing tool pass in CI, so none may exist."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
HELPER = TESTS / "support.py"
#: Ways of skipping or expecting failure that bypass the helper.
FORBIDDEN = re.compile(
    r"\bimportorskip\b|\bskipif\b|\bpytest\s*\.\s*(skip|xfail)\b|mark\s*\.\s*(skip|xfail)\b"
)


def test_no_test_skips_outside_the_one_helper() -> None:
    offences = [
        f"{path.relative_to(TESTS.parent)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != HELPER and path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not offences, "skip through tests.support.require instead:\n" + "\n".join(offences)


def test_the_check_finds_each_way_of_skipping() -> None:
    for line in [
        'pytest.importorskip("fastapi")',
        "@pytest.mark.skipif(sys.platform == 'win32', reason='x')",
        "pytestmark = pytest.mark.skip(reason='later')",
        'pytest.skip("no tool")',
        "@pytest.mark.xfail",
        'pytest.xfail("flaky")',
    ]:
        assert FORBIDDEN.search(line), line
    assert not FORBIDDEN.search("require(shutil.which('influxd'), 'influxd is missing')")
