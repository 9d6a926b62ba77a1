"""The terminal shows stored text as it is (issue 17, case 6): run names, benchmarks, params,
errors and tables holding square brackets, markup-looking strings, emoji codes or control
characters never crash `show`, `runs`, `compare` or `check` (rich.errors.MarkupError once
did) and print literally; control characters print as escapes, never reach the terminal."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perffarm.agent.store import LocalStore
from perffarm.analysis.statistics import summarize
from perffarm.commands import main
from perffarm.console import console, err_console, visible
from perffarm.model import (
    Attachment,
    Environment,
    MeasurementRecord,
    MeasurementStatus,
    Result,
    RunDocument,
    RunStatus,
    Series,
    Source,
    Table,
)

# Strings that broke or could break rich: closing tags without an opening one, a tag that
# styles the rest, an empty style, links, emoji codes, escapes, terminal escape sequences.
HOSTILE = [
    "test_read[/dev/null]",
    "[/p]",
    "[/]",
    "[]skipped[/]",
    "[bold red]alarm[/]",
    "[link=https://example.org]click[/link]",
    "[red]unclosed",
    ":smile: :thumbs_up:",
    "back\\",
    "\\[escaped]",
    "[[double]]",
    "50% [1/3]",
    "\x1b[2J\x1b[31mred",
    "\x1b]0;title\x07",
    "carriage\rreturn",
    "bell\x07",
    "nul\x00byte",
    "\u202egnp.exe",
    "del\x7f and c1\x85",
    "tab\there",
    "two\nlines",
]
words = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(min_size=1, max_size=16),
    st.lists(st.sampled_from(HOSTILE) | st.text(max_size=4), min_size=2, max_size=3).map("".join),
).filter(lambda word: word.strip() != "")
# Extreme finite numbers: the smallest subnormal, the largest double, huge and tiny values.
extreme = st.one_of(
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308]),
    st.floats(allow_nan=False, allow_infinity=False),
)
param_values = st.one_of(words, st.integers(-(2**63), 2**63 - 1), extreme, st.booleans())
# Attachment names may hold anything but control characters (the model refuses those).
attachment_names = words.filter(lambda name: re.fullmatch(r"[^\x00-\x1f\x7f]+", name) is not None)


@st.composite
def stored_pairs(draw: st.DrawFn) -> tuple[RunDocument, RunDocument, list[str]]:
    """Two runs of hostile names sharing a result; and the texts the output must show."""
    names = {
        key: draw(words)
        for key in (
            "project",
            "machine",
            "tag",
            "branch",
            "benchmark",
            "metric",
            "unit",
            "measurement",
            "type",
            "error",
            "section",
            "key",
            "value",
            "collector",
            "problem",
            "table",
            "field",
            "cell",
            "series",
        )
    }
    params = draw(st.dictionaries(words, param_values, max_size=2))
    attachment = draw(attachment_names)
    status = draw(st.sampled_from(list(MeasurementStatus)))

    def run(hours: int) -> RunDocument:
        samples = draw(st.lists(extreme, min_size=1, max_size=8))
        return RunDocument(
            project=names["project"],
            machine=names["machine"],
            tag=names["tag"],
            status=draw(st.sampled_from(list(RunStatus))),
            error=names["error"],
            started_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=hours),
            source=Source(branch=names["branch"], commit=names["branch"]),
            environment=Environment(
                sections={names["section"]: {names["key"]: names["value"]}},
                errors={names["collector"]: names["problem"]},
            ),
            measurements=[
                MeasurementRecord(
                    name=names["measurement"],
                    type=names["type"],
                    status=status,
                    error=names["error"],
                )
            ],
            results=[
                Result(
                    benchmark=names["benchmark"],
                    params=params,
                    metric=names["metric"],
                    unit=names["unit"],
                    samples=samples,
                    summary=summarize(samples),
                )
            ],
            tables=[Table(name=names["table"], fields=[names["field"]], rows=[[names["cell"]]])],
            attachments=[Attachment.from_bytes(attachment, b"log")],
            series=[Series(name=names["series"], unit=names["unit"], t=[0.0], values=[samples[0]])],
        )

    texts = [*names.values(), *(k for k in params), attachment]
    texts += [v for v in params.values() if isinstance(v, str)]
    return run(0), run(1), texts


def _pieces(text: str) -> list[str]:
    """What of ``text`` the terminal shows unbroken: the words of its escaped form (a cell
    shows each line on its own, a title or message may wrap between words)."""
    return visible(text).split()


@contextmanager
def _wide_terminal() -> Iterator[None]:
    # No folding: each cell on one line, so its text can be found whole in the output.
    widths = console.width, err_console.width
    console.width = err_console.width = 4000
    try:
        yield
    finally:
        console.width, err_console.width = widths


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pair=stored_pairs())
def test_stored_text_prints_literally_in_show_runs_compare_and_check(
    pair: tuple[RunDocument, RunDocument, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    baseline, contender, texts = pair
    with tempfile.TemporaryDirectory() as folder, _wide_terminal():
        store = str(Path(folder) / "store.db")
        with LocalStore(store) as local:
            local.save(baseline)
            local.save(contender)
        a, b = str(baseline.id), str(contender.id)
        capsys.readouterr()
        outputs = {}
        for command, expected in (
            (["show", a, "--samples"], {0}),
            (["runs"], {0}),
            (["compare", a, b], {0}),
            (["check", "--against", a, "--run", b], {0, 1, 3}),
        ):
            code = main([*command, "--store", store])
            captured = capsys.readouterr()
            assert code in expected, (command, captured.err)
            assert "Traceback" not in captured.err and "MarkupError" not in captured.err
            # Nothing but the printed text: no escape sequence reaches the terminal.
            assert "\x1b" not in captured.out + captured.err
            outputs[command[0]] = captured.out
    shown = outputs["show"]
    for text in texts:
        for piece in _pieces(text):
            assert piece in shown, (text, piece)
    for text in (baseline.project, baseline.machine):
        assert all(piece in outputs["runs"] for piece in _pieces(text))
    for text in (baseline.results[0].benchmark, baseline.results[0].metric):
        for piece in _pieces(text):
            assert piece in outputs["compare"] and piece in outputs["check"]


def test_a_build_failed_run_shows_its_skipped_measurements(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every build-failed run once crashed `perffarm show`: "skipped" had no colour, and
    # "[]skipped[/]" is no markup rich accepts.
    run = RunDocument(
        project="[/p]",
        machine="m1",
        status=RunStatus.BUILD_FAILED,
        error="build step make failed (exit status 2)",
        measurements=[
            MeasurementRecord(name="test_read[/dev/null]", type="command", status="skipped")
        ],
    )
    with LocalStore(store_path) as store:
        store.save(run)
    assert main(["show", str(run.id)[:8], "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "build-failed" in out and "skipped" in out
    assert "[/p]" in out and "test_read[/dev/null]" in out
    assert main(["runs", "--store", str(store_path)]) == 0
    assert "[/p]" in capsys.readouterr().out


def test_brackets_in_a_failed_measurement_print_in_the_run_outcome(
    tmp_path: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "project: '[/p]'\n"
        "measurements:\n"
        "  - name: read\n"
        "    type: command\n"
        "    command: 'echo test_read[/dev/null] [bold]out[/] >&2; exit 3'\n"
        "    repeat: 1\n"
    )
    code = main(["run", str(suite), "--store", str(store_path), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "Traceback" not in captured.err
    assert "read: failed" in captured.out
    assert "test_read[/dev/null] [bold]out[/]" in captured.out
    assert "[/p]" in captured.out
