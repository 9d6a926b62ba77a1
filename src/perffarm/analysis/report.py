"""Turning run comparisons into what people read: a terminal table, Markdown, JSON, JUnit XML."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from perffarm.analysis.compare import Presence, ResultComparison, Verdict
from perffarm.console import literal

VERDICT_STYLE = {
    Verdict.SLOWER: "bold red",
    Verdict.FASTER: "bold green",
    Verdict.UNCHANGED: "dim",
    Verdict.UNKNOWN: "yellow",
}
# The order a reader wants: what got worse first, what cannot be judged last.
_VERDICT_ORDER = {Verdict.SLOWER: 0, Verdict.FASTER: 1, Verdict.UNCHANGED: 2, Verdict.UNKNOWN: 3}


def format_number(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "–"
    magnitude = abs(value)
    text = f"{value:.4g}" if magnitude >= 1e-3 or value == 0 else f"{value:.3e}"
    return f"{text} {unit}".rstrip()


def format_change(ratio: float | None) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "–"
    return f"{ratio - 1:+.1%}"


def format_ci(ci: tuple[float, float] | None) -> str:
    if ci is None or not all(math.isfinite(v) for v in ci):
        return "–"
    return f"[{ci[0] - 1:+.1%}, {ci[1] - 1:+.1%}]"


def format_percent(fraction: float) -> str:
    """0.05 → "5%", 0.025 → "2.5%": a limit is printed exactly as it was given."""
    return f"{fraction * 100:.4g}%"


def format_p(p: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def verdict_text(item: ResultComparison) -> str:
    if item.presence is not Presence.BOTH:
        return item.presence.value
    return item.verdict.value


def ordered(items: Sequence[ResultComparison]) -> list[ResultComparison]:
    """Slower first, then faster, unchanged, and what could not be compared."""
    return sorted(
        items,
        key=lambda item: (
            _VERDICT_ORDER[item.verdict] if item.presence is Presence.BOTH else 4,
            item.benchmark,
            params_text(item.params),
            item.metric,
        ),
    )


def comparison_table(items: Sequence[ResultComparison], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("benchmark", "left"),
        ("params", "left"),
        ("metric", "left"),
        ("baseline", "right"),
        ("contender", "right"),
        ("change", "right"),
        ("CI", "right"),
        ("p", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name == "verdict")  # type: ignore[arg-type]
    for item in items:
        c = item.comparison
        style = VERDICT_STYLE[item.verdict] if item.presence is Presence.BOTH else "yellow"
        table.add_row(
            item.benchmark,
            params_text(item.params),
            item.metric,
            format_number(c.baseline if c else None, item.unit),
            format_number(c.contender if c else None, item.unit),
            format_change(c.ratio if c else None),
            format_ci(c.ratio_ci if c else None),
            format_p(c.p_value if c else None),
            literal(verdict_text(item), style),
        )
    return table


def _markdown_row(item: ResultComparison) -> str:
    c = item.comparison
    cells = [
        f"`{item.benchmark}`",
        params_text(item.params) or "",
        item.metric,
        format_number(c.baseline if c else None, item.unit),
        format_number(c.contender if c else None, item.unit),
        format_change(c.ratio if c else None),
        format_ci(c.ratio_ci if c else None),
        format_p(c.p_value if c else None),
        verdict_text(item),
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


_MD_HEADER = (
    "| benchmark | params | metric | baseline | contender | change | CI | p | verdict |\n"
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
)


def markdown_report(
    items: Sequence[ResultComparison],
    *,
    baseline_label: str,
    contender_label: str,
    max_regression: float,
) -> str:
    """A pull-request comment: the verdict in the title, the slower benchmarks named first."""
    slower = [i for i in items if i.presence is Presence.BOTH and i.verdict is Verdict.SLOWER]
    faster = [i for i in items if i.presence is Presence.BOTH and i.verdict is Verdict.FASTER]
    unchanged = [i for i in items if i.presence is Presence.BOTH and i.verdict is Verdict.UNCHANGED]
    other = [i for i in items if i.presence is not Presence.BOTH or i.verdict is Verdict.UNKNOWN]
    lines: list[str] = []
    if slower:
        names = ", ".join(f"`{i.name}`" for i in slower)
        lines.append(
            f"## ❌ perffarm: {len(slower)} slower beyond {format_percent(max_regression)}: {names}"
        )
    elif faster or unchanged:
        lines.append(f"## ✅ perffarm: no regression beyond {format_percent(max_regression)}")
    else:
        # Nothing judged: `perffarm check` exits 3, and the comment must not say "passed".
        lines.append("## ⚠️ perffarm: no verdict: no result could be compared")
    lines.append("")
    lines.append(
        f"Contender {contender_label} against baseline {baseline_label}: "
        f"{len(slower)} slower, {len(faster)} faster, {len(unchanged)} unchanged, "
        f"{len(other)} not compared."
    )
    for heading, group, folded in (
        ("Slower", slower, False),
        ("Faster", faster, False),
        ("No significant change", unchanged, True),
        ("Not compared", other, True),
    ):
        if not group:
            continue
        lines.append("")
        if folded:
            lines.append(f"<details><summary>{heading} ({len(group)})</summary>")
            lines.append("")
        else:
            lines.append(f"### {heading}")
            lines.append("")
        lines.append(_MD_HEADER)
        lines.extend(_markdown_row(i) for i in ordered(group))
        notes = [
            f"- `{i.name}`: {note}"
            for i in ordered(group)
            if i.comparison
            for note in i.comparison.notes
        ]
        if notes and not folded:
            lines.append("")
            lines.extend(notes)
        if folded:
            lines.append("")
            lines.append("</details>")
    lines.append("")
    lines.append(
        "<sub>Verdicts need Mann-Whitney p < α and the whole confidence interval of the ratio "
        "beyond the limit; change = contender / baseline − 1.</sub>"
    )
    return "\n".join(lines) + "\n"


def junit_report(
    items: Sequence[ResultComparison], *, max_regression: float, suite: str = "perffarm check"
) -> str:
    """One testcase per comparison; a significant regression beyond the limit is a failure."""
    failures = sum(1 for i in items if i.presence is Presence.BOTH and i.verdict is Verdict.SLOWER)
    skipped = sum(
        1 for i in items if i.presence is not Presence.BOTH or i.verdict is Verdict.UNKNOWN
    )
    root = ET.Element("testsuites", name=suite)
    testsuite = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(items)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    for item in items:
        c = item.comparison
        case = ET.SubElement(
            testsuite,
            "testcase",
            classname=f"perffarm.{item.benchmark}",
            name=item.name,
        )
        detail = (
            f"{item.metric}: baseline {format_number(c.baseline, item.unit)}, contender "
            f"{format_number(c.contender, item.unit)}, change {format_change(c.ratio)} "
            f"CI {format_ci(c.ratio_ci)}, p {format_p(c.p_value)}"
            if c
            else item.presence.value
        )
        if item.presence is not Presence.BOTH:
            ET.SubElement(case, "skipped", message=item.presence.value)
        elif item.verdict is Verdict.SLOWER:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"slower by {format_change(c.ratio if c else None)} "
                f"(limit {format_percent(max_regression)})",
                type="regression",
            )
            failure.text = detail + ("\n" + "\n".join(c.notes) if c and c.notes else "")
        elif item.verdict is Verdict.UNKNOWN:
            ET.SubElement(
                case, "skipped", message="; ".join(c.notes) if c and c.notes else "unknown"
            )
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{item.verdict.value}: {detail}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def json_report(items: Sequence[ResultComparison], **header: Any) -> dict[str, Any]:
    return {**header, "comparisons": [item.to_dict() for item in items]}
