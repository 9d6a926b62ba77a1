"""Hostile input for the property-based tests at every door (importable as ``tests.hostile``).

Text that markup, templates, terminals, shells or databases could read as something else,
and numbers at the edges of a double; the settings every door's test uses, with an example
count that PERFFARM_FUZZ_EXAMPLES raises for a deeper search (``scripts/fuzz-api`` sets it).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Examples per property: small by default to keep the suite fast.
EXAMPLES = int(os.environ.get("PERFFARM_FUZZ_EXAMPLES", "15"))


def fuzz_settings(scale: float = 1.0) -> settings:
    """Settings of one door's property: ``scale`` x EXAMPLES examples, no deadline (the
    machine is shared), no example database (runs stay independent of each other)."""
    return settings(
        max_examples=max(1, round(EXAMPLES * scale)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


#: What a page must never hold as markup: an element or a handler made from user text.
EVIL_TAG = "perffarm-evil"
SNIPPETS = [
    f"<script>alert(1)</script><{EVIL_TAG}>",
    f'"><{EVIL_TAG} onerror=alert(1)>',
    f"</script><{EVIL_TAG}>",
    f"</textarea></title><{EVIL_TAG}>",
    "javascript:alert(1)",
    "test_read[/dev/null]",
    "[/p]",
    "[bold red]x[/]",
    "{{ 7 * 7 }}{% raw %}",
    "${HOME} $(id) `id`",
    "'; DROP TABLE runs; --",
    "%s%n%x",
    "\u202egnp.exe",
    "\u200b\ufeff\u2028\u2029",
    "\x1b[31mred\x1b[0m",
    "a\tb\nc\rd",
    "\x01\x07\x08\x7f",
    "日本語 ✓ résumé",
    "😀🇫🇷👩‍💻",
    "\\",
    "'\"&<>",
    "..%2F..%2Fetc%2Fpasswd",
    "NaN",
    "-0",
    "1e999",
    " ",
]


def hostile_text(*, min_size: int = 0, max_size: int = 60, nul: bool = False) -> Any:
    """Text a client may send: snippets, anything Unicode encodes, long strings.

    ``max_size`` bounds the text, except that from 200 on long strings of up to 4,200
    characters come too (beyond every limit of an indexed column). ``nul=False`` leaves NUL
    out: the doors refuse it in the text they index and the tests that want it add it."""
    excluded = "" if nul else "\x00"
    plain = st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters=excluded),
        min_size=min_size,
        max_size=max_size,
    )
    fitting = [s for s in SNIPPETS if min_size <= len(s) <= max_size]
    choices = [plain]
    if fitting:
        snippet = st.sampled_from(fitting)
        mixed = st.tuples(snippet, plain).map(lambda pair: (pair[0] + pair[1])[:max_size])
        choices += [snippet, mixed]
    if max_size >= 200:
        start = max(min_size, 200)
        choices.append(st.integers(start, start + 4000).map(lambda n: ("ß<x>" * n)[:n]))
    return st.one_of(*choices)


def name_text(max_size: int = 60) -> Any:
    """A non-empty, non-blank name of at most ``max_size`` characters."""
    return hostile_text(min_size=1, max_size=max_size).filter(lambda s: s.strip())


EDGE_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e-300,
    1e308,
    -1e308,
    sys.float_info.max,
    -sys.float_info.max,
    1.0,
    0.1,
    123456789.123456789,
]


def finite_floats() -> Any:
    """Any finite double, the edges more often: zeros, subnormals, the largest."""
    return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=False, allow_infinity=False))


#: JSON numbers no double holds or no reader agrees on, spelled as a client would send them.
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 400]


def visible_markup(html: str) -> list[str]:
    """Elements or handlers made from user text: the evil tag outside of text, or an
    ``on...=`` attribute after it. An empty list when every hostile snippet was escaped."""
    return re.findall(rf"<{EVIL_TAG}[^>]*>", html, flags=re.IGNORECASE)


# -- load-test metrics ----------------------------------------------------------------------

metric_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64)
    | finite_floats()
    | hostile_text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(hostile_text(max_size=10), inner, max_size=3)
    ),
    max_leaves=6,
)
metrics = st.dictionaries(
    st.sampled_from(["received", "sent", "latency", "errors", "p(99)"]) | hostile_text(max_size=40),
    metric_values,
    max_size=5,
)


@st.composite
def metrics_text(draw: st.DrawFn) -> str:
    """A metrics object as JSON text: as written, or with a number no double holds, nesting
    no reader survives, or something that is not an object at all."""
    value = draw(metrics)
    text = json.dumps(value)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        text = json.dumps({**value, "bad": 7.0e-310}).replace(
            "7e-310", draw(st.sampled_from(BAD_NUMBERS))
        )
    elif kind == 1:
        depth = draw(st.sampled_from([63, 64, 300, 2_000]))
        text = '{"deep": ' + "[" * depth + "]" * depth + "}"
    elif kind == 2:
        text = draw(st.sampled_from(["[]", "3", '"x"', "null", "{", "", "{}{}", '{"a":1}x']))
    return text
